"""Order data: request bodies, placing over HTTP, and counts read straight from the tables."""

from typing import Any

import httpx
from opentelemetry.trace import NoOpTracer
from sqlalchemy import func, select

from app.core.resources import Resources
from app.domains.audit.schemas import AuditOrigin
from app.domains.orders.models import Order
from app.domains.orders.prices import PriceHints
from app.domains.orders.repository import order_writes
from app.domains.orders.service import OrderService
from tests.factories.accounts import Account

ORDERS = "/api/v1/orders"
ADDRESS = {"street": "1 Main Street", "city": "Springfield", "country": "US"}


async def place(client: httpx.AsyncClient, account: Account, body: object) -> httpx.Response:
    return await client.post(ORDERS, json=body, headers=account.headers)


async def order_count(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(Order)) or 0


def order_body(
    *lines: tuple[int, int], shipping: str = "standard", **address: str
) -> dict[str, Any]:
    return {
        "lines": [{"item_id": item_id, "quantity": quantity} for item_id, quantity in lines],
        "shipping": shipping,
        "address": ADDRESS | address,
    }


def order_service(resources: Resources, *, hints: PriceHints | None = None) -> OrderService:
    """The order service as a request gets it (app.domains.orders.dependencies), with price
    hints of its own unless given."""
    return OrderService(
        writes=order_writes(resources.engine, resources.calls, NoOpTracer()),
        sessionmaker=resources.sessionmaker,
        cache=resources.cache,
        announce=resources.outbox.announce,
        tracer=NoOpTracer(),
        hints=hints if hints is not None else PriceHints(),
        origin=AuditOrigin.of("test-request", "127.0.0.1"),
    )
