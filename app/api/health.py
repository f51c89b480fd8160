"""Liveness and readiness probes for load balancers and orchestrators."""

import asyncio
import time
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.core.deps import EngineDep, RedisDep, SettingsDep
from app.core.errors import Problem, problem_response

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["healthy"]
    version: str


class Check(BaseModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Check]


class Unready(Problem):
    checks: dict[str, Check]


@router.get("/health", summary="Liveness: the process is up; touches no dependency")
async def health(settings: SettingsDep) -> Health:
    return Health(status="healthy", version=settings.version)


async def _check(probe: Awaitable[object], limit_seconds: float) -> Check:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit_seconds):
            await probe
    except TimeoutError:
        error: str | None = f"no answer within {limit_seconds:g}s"
    except Exception as exc:
        error = type(exc).__name__
    else:
        error = None
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return Check(status="failed" if error else "ok", latency_ms=latency_ms, error=error)


async def _ping_database(engine: EngineDep) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness: the database (and Redis, when configured) answer",
    responses={503: {"model": Unready, "content": {"application/problem+json": {}}}},
)
async def readiness(
    request: Request, settings: SettingsDep, engine: EngineDep, redis: RedisDep
) -> Readiness | JSONResponse:
    timeout = settings.health_check_timeout
    probes: dict[str, Awaitable[object]] = {"database": _ping_database(engine)}
    if redis is not None:
        probes["redis"] = redis.ping()
    results = await asyncio.gather(*(_check(probe, timeout) for probe in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    failed = [name for name, check in checks.items() if check.status == "failed"]
    if not failed:
        return Readiness(status="ready", checks=checks)
    return problem_response(
        request,
        status=503,
        detail=f"Not ready: {', '.join(failed)} unavailable.",
        extensions={"checks": {name: check.model_dump() for name, check in checks.items()}},
    )
