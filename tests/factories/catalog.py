"""Catalog data: items created over HTTP, as their owner would, or straight through the ORM
when the catalog's own API is not what a test is about; then, as the catalog's writes do, the
cached reads are forgotten and the fence raised, so that the next read through the API sees
the row even from a read replica."""

import itertools
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from app.core.resources import Resources
from app.domains.items.models import Item
from app.domains.items.service import forget_cached
from tests.factories.accounts import Account

ITEMS = "/api/v1/items"
_names = itertools.count(1)


async def post_item(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Widget", "description": "A useful widget", "price": "12.50", "stock": 3}
    response = await client.post(ITEMS, json=body | fields, headers=account.headers)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


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
    await forget_cached(resources.cache, [item.id])
    return item.id


async def stock_of(resources: Resources, item_id: int) -> int:
    async with resources.sessionmaker() as session:
        stock = await session.scalar(select(Item.stock).where(Item.id == item_id))
    assert stock is not None
    return stock
