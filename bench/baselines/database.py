"""The asyncpg pool the database baselines share, sized like the service's pool."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

# The service's DB_POOL_SIZE default; its overflow is never needed at one worker's load.
POOL_SIZE = 10


def asyncpg_dsn(url: str) -> str:
    """postgresql+asyncpg://... (SQLAlchemy's spelling) as the postgresql://... asyncpg takes."""
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql://{rest}"


@asynccontextmanager
async def pool_lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(os.environ["DATABASE_URL"]), min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


def pool_of(request: Request) -> Any:
    # asyncpg ships no type information; its Pool is Any to mypy either way.
    return request.app.state.pool


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "healthy"})
