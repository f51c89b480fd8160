import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.core.db.base import utcnow
from app.core.resources import Resources
from app.domains.items.models import Item
from app.domains.orders.idempotency import request_fingerprint
from app.domains.orders.models import IdempotencyKey, IdempotencyStatus
from app.domains.orders.schemas import OrderCreate
from tests.factories import (
    ORDERS,
    Account,
    create_item,
    order_body,
    order_count,
    stock_of,
    user,
)


async def place(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any], key: str
) -> httpx.Response:
    return await client.post(ORDERS, json=body, headers=account.headers | {"Idempotency-Key": key})


async def insert_key(
    resources: Resources,
    *,
    user_id: int,
    key: str,
    body: dict[str, Any],
    status: IdempotencyStatus,
    expires_in: timedelta,
) -> None:
    async with resources.sessionmaker() as session:
        session.add(
            IdempotencyKey(
                id=uuid.uuid4().hex,
                user_id=user_id,
                key=key,
                fingerprint=request_fingerprint(OrderCreate.model_validate(body)),
                status=status,
                response_status=201 if status is IdempotencyStatus.COMPLETED else None,
                response_body={"id": 1} if status is IdempotencyStatus.COMPLETED else None,
                expires_at=utcnow() + expires_in,
            )
        )
        await session.commit()


async def test_a_repeat_replays_the_first_answer_and_orders_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=5)
    body = order_body((item, 2))

    first = await place(client, buyer, body, "order-7f3a")
    # Same request, written differently: key order and the default country do not matter.
    reordered = {"address": {"city": "Springfield", "street": "1 Main Street"}} | {
        "shipping": "standard",
        "lines": body["lines"],
    }
    repeat = await place(client, buyer, reordered, "order-7f3a")

    assert first.status_code == repeat.status_code == 201, repeat.text
    assert repeat.json() == first.json()
    assert repeat.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert repeat.headers["location"] == first.headers["location"]
    assert await order_count(resources) == 1
    assert await stock_of(resources, item) == 3


async def test_the_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    assert (await place(client, buyer, order_body((item, 1)), "k1")).status_code == 201

    response = await place(client, buyer, order_body((item, 2)), "k1")

    assert response.status_code == 422
    assert response.json()["type"] == "urn:problem-type:idempotency-key-reused"
    assert await order_count(resources) == 1
    assert await stock_of(resources, item) == 9


async def test_keys_belong_to_their_user(client: httpx.AsyncClient, resources: Resources) -> None:
    alice, bob = await user(client), await user(client)
    item = await create_item(resources, alice.id)
    body = order_body((item, 1))
    first = await place(client, alice, body, "shared")
    second = await place(client, bob, body, "shared")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert "idempotent-replayed" not in second.headers
    assert await stock_of(resources, item) == 8


async def test_a_key_in_flight_is_409(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    body = order_body((item, 1))
    await insert_key(
        resources,
        user_id=buyer.id,
        key="busy",
        body=body,
        status=IdempotencyStatus.IN_FLIGHT,
        expires_in=timedelta(seconds=60),
    )

    response = await place(client, buyer, body, "busy")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:problem-type:idempotency-key-in-flight"
    assert response.headers["retry-after"] == "1"
    other_body = await place(client, buyer, order_body((item, 2)), "busy")
    assert other_body.status_code == 422
    assert await order_count(resources) == 0


async def test_a_key_whose_request_died_is_taken_over_after_its_lease(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    body = order_body((item, 1))
    await insert_key(
        resources,
        user_id=buyer.id,
        key="abandoned",
        body=body,
        status=IdempotencyStatus.IN_FLIGHT,
        expires_in=timedelta(seconds=-1),
    )
    response = await place(client, buyer, body, "abandoned")
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers


async def test_an_expired_key_is_used_afresh(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    await insert_key(
        resources,
        user_id=buyer.id,
        key="old",
        body=order_body((item, 5)),
        status=IdempotencyStatus.COMPLETED,
        expires_in=timedelta(seconds=-1),
    )
    response = await place(client, buyer, order_body((item, 1)), "old")
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    replay = await place(client, buyer, order_body((item, 1)), "old")
    assert replay.headers["idempotent-replayed"] == "true"
    assert await stock_of(resources, item) == 9


async def test_a_failed_request_frees_its_key_for_a_retry(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=1)
    body = order_body((item, 2))
    assert (await place(client, buyer, body, "retry-me")).status_code == 409
    async with resources.sessionmaker() as session:
        await session.execute(update(Item).where(Item.id == item).values(stock=2))
        await session.commit()

    response = await place(client, buyer, body, "retry-me")

    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    assert await stock_of(resources, item) == 0


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, 'quote"d', "naïve"])
async def test_a_malformed_key_is_422(client: httpx.AsyncClient, key: str) -> None:
    buyer = await user(client)
    response = await client.post(
        ORDERS,
        json=order_body((1, 1)),
        # As raw bytes, so the UTF-8 one reaches the server as a client could send it.
        headers=[
            (b"authorization", buyer.headers["Authorization"].encode()),
            (b"idempotency-key", key.encode()),
        ],
    )
    assert response.status_code == 422
    assert ["header", "Idempotency-Key"] in [error["loc"] for error in response.json()["errors"]]


async def test_concurrent_repeats_order_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await user(client)
    item = await create_item(resources, buyer.id, stock=100)
    body = order_body((item, 1))

    responses = await asyncio.gather(*(place(client, buyer, body, "burst") for _ in range(10)))

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 409}, [response.text for response in responses]
    created = [response for response in responses if response.status_code == 201]
    originals = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(originals) == 1
    assert all(response.json() == originals[0].json() for response in created)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"] == "urn:problem-type:idempotency-key-in-flight"
    assert await order_count(resources) == 1
    assert await stock_of(resources, item) == 99
