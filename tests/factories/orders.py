"""Order data: request bodies, placing over HTTP, and counts read straight from the tables."""

from typing import Any

import httpx
from sqlalchemy import func, select

from app.core.resources import Resources
from app.domains.orders.models import Order
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
