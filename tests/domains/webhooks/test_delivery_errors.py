"""What an operator reads of a delivery: why its last attempt failed, the start of the
receiver's answer, when it is tried next; and the deliveries filtered by status and type."""

import socket
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.core.resources import Resources
from app.domains.webhooks.models import RESPONSE_BODY_CHARS
from tests.domains.webhooks.hooks_helpers import MAX_ATTEMPTS, deliveries, drain, hooks_app
from tests.factories import (
    WEBHOOKS,
    admin,
    create_item,
    order_body,
    place,
    register_webhook,
    user,
)
from tests.problems import assert_problem
from tests.webhook_receiver import HOOK_PATH, webhook_receiver


async def one_dead_delivery(
    client: httpx.AsyncClient, resources: Resources, url: str
) -> dict[str, Any]:
    root = await admin(client, resources)
    hook = await register_webhook(client, root, url, events=["order.placed"])
    buyer = await user(client)
    item = await create_item(resources, buyer.id)
    await place(client, buyer, order_body((item, 1)))
    await drain(resources)
    [delivery] = await deliveries(client, root.headers, hook["id"])
    assert delivery["status"] == "dead", delivery
    assert delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["next_attempt_at"] is None
    return delivery


async def test_an_error_status_is_named_with_the_start_of_the_answer(
    app: FastAPI, migrated: Settings
) -> None:
    # Two bytes a character: the kept start is counted in characters, not bytes.
    answer = ("é" * 2000).encode()
    with webhook_receiver(statuses=[500] * MAX_ATTEMPTS, answer=answer) as receiver:
        async with hooks_app(migrated) as (client, resources):
            delivery = await one_dead_delivery(client, resources, receiver.url)

    assert delivery["last_error"] == "HTTP status 500"
    assert delivery["last_status_code"] == 500
    assert delivery["last_response_body"] == "é" * RESPONSE_BODY_CHARS


async def test_a_refused_connection_is_named(app: FastAPI, migrated: Settings) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with hooks_app(migrated) as (client, resources):
        delivery = await one_dead_delivery(client, resources, f"http://127.0.0.1:{port}{HOOK_PATH}")

    assert delivery["last_error"] == "connection refused"
    assert delivery["last_status_code"] is None
    assert delivery["last_response_body"] is None


async def test_a_receiver_too_slow_to_answer_times_out(app: FastAPI, migrated: Settings) -> None:
    with webhook_receiver(delay=0.5) as receiver:
        async with hooks_app(migrated, webhook_timeout_seconds=0.1) as (client, resources):
            delivery = await one_dead_delivery(client, resources, receiver.url)

    assert delivery["last_error"] == "timeout: no complete answer within 0.1 s"
    assert delivery["last_status_code"] is None


async def test_deliveries_filter_by_status_and_event_type(app: FastAPI, migrated: Settings) -> None:
    # The first order's event is delivered at once; the second's fails every attempt.
    with webhook_receiver(statuses=[200] + [503] * MAX_ATTEMPTS) as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            first = (await place(client, buyer, order_body((item, 1)))).json()
            await drain(resources)
            second = (await place(client, buyer, order_body((item, 1)))).json()
            await drain(resources)

            def orders(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
                return [(row["event_type"], row["status"]) for row in found]

            every = await deliveries(client, root.headers, hook["id"])
            dead = await deliveries(client, root.headers, hook["id"], status="dead")
            delivered = await deliveries(client, root.headers, hook["id"], status="delivered")
            placed = await deliveries(client, root.headers, hook["id"], event_type="order.placed")
            shipped = await deliveries(client, root.headers, hook["id"], event_type="order.shipped")
            both = await deliveries(
                client, root.headers, hook["id"], event_type="order.placed", status="dead"
            )
            unfiltered = await client.get(
                f"{WEBHOOKS}/{hook['id']}/deliveries", params={"limit": 1}, headers=root.headers
            )
            # A cursor is bound to its filters.
            other_filter = await client.get(
                f"{WEBHOOKS}/{hook['id']}/deliveries",
                params={"status": "delivered", "cursor": unfiltered.json()["next_cursor"]},
                headers=root.headers,
            )
            bad = await client.get(
                f"{WEBHOOKS}/{hook['id']}/deliveries",
                params={"status": "lost"},
                headers=root.headers,
            )

    assert every[0]["event_id"] != every[1]["event_id"]
    assert first["id"] != second["id"]
    assert orders(every) == [("order.placed", "dead"), ("order.placed", "delivered")]
    assert orders(dead) == [("order.placed", "dead")]
    assert orders(delivered) == [("order.placed", "delivered")]
    assert placed == every
    assert shipped == []
    assert both == dead
    assert other_filter.status_code == 422
    assert_problem(bad, 422)
