"""Stock under concurrency: separate requests through the app, each with its own session and
connection, so on PostgreSQL they really run at once."""

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.core.resources import Resources
from app.domains.orders.models import OrderLine
from tests.factories import (
    ORDERS,
    create_item,
    order_body,
    order_count,
    stock_of,
    user,
)


async def test_fifty_buyers_for_ten_units(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=10)
    body = order_body((item, 1))

    responses = await asyncio.gather(
        *(client.post(ORDERS, json=body, headers=buyer.headers) for _ in range(50))
    )

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {201: 10, 409: 40}, [r.text for r in responses if r.status_code >= 500]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"] == "urn:problem-type:out-of-stock"
    assert await stock_of(resources, item) == 0
    assert await order_count(resources) == 10


async def test_orders_sharing_items_in_opposite_line_order_do_not_deadlock(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    first = await create_item(resources, buyer.id, stock=100)
    second = await create_item(resources, buyer.id, stock=100)
    forward = order_body((first, 1), (second, 1))
    backward = order_body((second, 1), (first, 1))

    responses = await asyncio.gather(
        *(
            client.post(ORDERS, json=forward if n % 2 else backward, headers=buyer.headers)
            for n in range(20)
        )
    )

    assert [response.status_code for response in responses] == [201] * 20
    assert (await stock_of(resources, first), await stock_of(resources, second)) == (80, 80)


async def test_concurrent_cancels_return_the_stock_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=10)
    order = (await client.post(ORDERS, json=order_body((item, 4)), headers=buyer.headers)).json()

    responses = await asyncio.gather(
        *(client.post(f"{ORDERS}/{order['id']}/cancel", headers=buyer.headers) for _ in range(8))
    )

    assert Counter(response.status_code for response in responses) == {200: 1, 409: 7}
    assert await stock_of(resources, item) == 10


async def test_catalog_reads_see_stock_taken_and_returned(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=5)
    path = f"/api/v1/items/{item}"
    assert (await client.get(path)).json()["stock"] == 5  # now cached
    listed = (await client.get("/api/v1/items")).json()["items"]
    assert [entry["stock"] for entry in listed] == [5]

    placed = await client.post(ORDERS, json=order_body((item, 2)), headers=buyer.headers)
    assert placed.status_code == 201
    assert (await client.get(path)).json()["stock"] == 3
    assert [entry["stock"] for entry in (await client.get("/api/v1/items")).json()["items"]] == [3]

    order_id = placed.json()["id"]
    cancelled = await client.post(f"{ORDERS}/{order_id}/cancel", headers=buyer.headers)
    assert cancelled.status_code == 200
    assert (await client.get(path)).json()["stock"] == 5


@pytest.mark.parametrize("clients", [64, 256])
async def test_a_flash_sale_sells_the_stock_exactly(
    postgres_url: str, client: httpx.AsyncClient, resources: Resources, clients: int
) -> None:
    """Every client buys one unit of the hot item at a time, some with another item on the
    same order in either line order, until told it is out of stock: every unit is sold,
    once, and each sale is an order the client was told of."""
    buyers = [await user(client) for _ in range(8)]
    stock = 2 * clients
    hot = await create_item(resources, buyers[0].id, stock=stock)
    others = [await create_item(resources, buyers[0].id, stock=100_000) for _ in range(4)]
    told: list[dict[str, Any]] = []

    async def shopper(number: int) -> None:
        buyer, rng = buyers[number % len(buyers)], random.Random(number)
        while True:
            lines = [(hot, 1)] + ([(rng.choice(others), 1)] if number % 2 else [])
            rng.shuffle(lines)
            response = await client.post(ORDERS, json=order_body(*lines), headers=buyer.headers)
            if response.status_code == 201:
                told.append(response.json())
            elif response.status_code == 409:
                assert response.json()["type"] == "urn:problem-type:out-of-stock"
                return
            else:
                # A worker or pool too busy to start it: refused before anything happened.
                assert response.status_code == 503, response.text
                await asyncio.sleep(0.01)

    await asyncio.gather(*(shopper(number) for number in range(clients)))

    sold = [line for order in told for line in order["lines"] if line["item_id"] == hot]
    assert len(sold) == stock
    assert await stock_of(resources, hot) == 0
    async with resources.sessionmaker() as session:
        recorded = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(OrderLine.item_id == hot)
        )
    assert recorded == stock
    assert await order_count(resources) == len(told)
