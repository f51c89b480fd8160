"""Starlette + asyncpg: one INSERT into a scratch table per request, the database-write limit."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.baselines.database import health, pool_lifespan, pool_of

# bench.run creates it before the servers start, so a worker never races another's DDL.
SCRATCH_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bench_scratch (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    quantity integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = "INSERT INTO bench_scratch (name, quantity) VALUES ($1, $2) RETURNING id, created_at"


async def insert_row(request: Request) -> JSONResponse:
    body = await request.json()
    row = await pool_of(request).fetchrow(INSERT, str(body["name"]), int(body["quantity"]))
    return JSONResponse(
        {"id": row["id"], "created_at": row["created_at"].isoformat()}, status_code=201
    )


app = Starlette(
    routes=[Route("/health", health), Route("/rows", insert_row, methods=["POST"])],
    lifespan=pool_lifespan,
)
