"""Builders for order tests. Items are written through the ORM: the catalog's own API is
not what these tests are about."""

import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from app.core.resources import Resources
from app.domains.items.models import Item
from app.domains.orders.models import Order

ORDERS = "/api/v1/orders"
ADDRESS = {"street": "1 Main Street", "city": "Springfield", "country": "US"}
_names = itertools.count(1)


async def create_item(
    resources: Resources, owner_id: int, *, price: str = "10.00", stock: int = 10
) -> int:
    async with resources.sessionmaker() as session:
        item = Item(
            name=f"Item {next(_names)}",
            description="",
            price=Decimal(price),
            stock=stock,
            owner_id=owner_id,
        )
        session.add(item)
        await session.commit()
        return item.id


async def stock_of(resources: Resources, item_id: int) -> int:
    async with resources.sessionmaker() as session:
        stock = await session.scalar(select(Item.stock).where(Item.id == item_id))
    assert stock is not None
    return stock


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
