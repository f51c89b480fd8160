"""Liveness and readiness probes for load balancers and orchestrators."""

import asyncio
import time
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.core.deps import EngineDep, RedisDep, ReplicasDep, SettingsDep
from app.core.errors import Problem
from app.core.http.problems import problem_response

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["healthy"]
    version: str


class Check(BaseModel):
    status: Literal["ok", "degraded", "failed"] = Field(
        description="degraded: a dependency the service runs without for now is down"
    )
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "degraded"]
    checks: dict[str, Check]


class Unready(Problem):
    checks: dict[str, Check]


@router.get("/health", summary="Liveness: the process is up; touches no dependency")
async def health(settings: SettingsDep) -> Health:
    return Health(status="healthy", version=settings.version)


async def _check(probe: Awaitable[object], limit_seconds: float, *, required: bool) -> Check:
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
    status: Literal["ok", "degraded", "failed"] = "ok"
    if error is not None:
        status = "failed" if required else "degraded"
    return Check(status=status, latency_ms=latency_ms, error=error)


async def _ping_database(engine: EngineDep) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness: the database answers; Redis and read replicas, when configured, are "
    "reported",
    responses={503: {"model": Unready, "content": {"application/problem+json": {}}}},
)
async def readiness(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    redis: RedisDep,
    replicas: ReplicasDep,
) -> Readiness | JSONResponse:
    """503 only when the database fails: without it no request can be served.

    Redis is an accelerator: caches and rate limits fall back to in-process state while it is
    down, so a failing Redis is reported as degraded and the replica stays in rotation. Were
    it a 503, one Redis outage would take every replica out of the load balancer at once.
    So are read replicas, as the worker's background look last found them (this asks
    none): one down or lagging is skipped, its reads served by the primary.
    """
    timeout = settings.health_check_timeout
    # name -> (probe, whether the service can serve requests without it)
    probes: dict[str, tuple[Awaitable[object], bool]] = {"database": (_ping_database(engine), True)}
    if redis is not None:
        probes["redis"] = (redis.ping(), False)
    results = await asyncio.gather(
        *(_check(probe, timeout, required=required) for probe, required in probes.values())
    )
    checks = dict(zip(probes, results, strict=True))
    for name, skipped in replicas.health().items():
        checks[f"read_replica_{name}"] = Check(
            status="ok" if skipped is None else "degraded", latency_ms=0.0, error=skipped
        )
    failed = [name for name, check in checks.items() if check.status == "failed"]
    if not failed:
        degraded = any(check.status == "degraded" for check in checks.values())
        return Readiness(status="degraded" if degraded else "ready", checks=checks)
    return problem_response(
        request,
        status=503,
        detail=f"Not ready: {', '.join(failed)} unavailable.",
        extensions={"checks": {name: check.model_dump() for name, check in checks.items()}},
    )
