"""The orders' SQL: reads through the ORM (`orders`), and the writes of placing and changing
an order, each one transaction, one database function call on PostgreSQL (`postgres`) and
plain statements on SQLite (`sqlite`), behind one protocol (`writes`)."""

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db.calls import Calls
from app.domains.orders.repository.orders import OrderRepository, purge_expired_keys
from app.domains.orders.repository.postgres import PostgresOrderWrites
from app.domains.orders.repository.sqlite import SqliteOrderWrites
from app.domains.orders.repository.writes import OrderWrites


def order_writes(engine: AsyncEngine, calls: Calls | None, tracer: Tracer) -> OrderWrites:
    """The writes for the database behind `engine`: its functions when it has `calls`
    (PostgreSQL), plain statements otherwise (SQLite)."""
    if calls is not None:
        return PostgresOrderWrites(calls, tracer)
    return SqliteOrderWrites(engine)


__all__ = ["OrderRepository", "OrderWrites", "order_writes", "purge_expired_keys"]
