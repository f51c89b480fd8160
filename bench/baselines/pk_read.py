"""Starlette + asyncpg: one item row by primary key as JSON, the database-read limit."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.baselines.database import health, pool_lifespan, pool_of

QUERY = (
    "SELECT id, name, description, price, stock, owner_id, created_at, updated_at "
    "FROM items WHERE id = $1"
)


async def read_item(request: Request) -> JSONResponse:
    item_id: int = request.path_params["item_id"]
    row = await pool_of(request).fetchrow(QUERY, item_id)
    if row is None:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return JSONResponse(
        {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "price": str(row["price"]),
            "stock": row["stock"],
            "owner_id": row["owner_id"],
            "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
        }
    )


app = Starlette(
    routes=[Route("/health", health), Route("/items/{item_id:int}", read_item)],
    lifespan=pool_lifespan,
)
