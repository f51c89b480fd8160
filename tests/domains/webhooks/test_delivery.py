"""Order events delivered to a real HTTP receiver on 127.0.0.1, as a subscriber sees them."""

import time
from datetime import datetime

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.jobs import OutboxStatus
from app.core.resources import Resources
from app.domains.webhooks.schemas import OrderEventPayload
from tests.domains.webhooks.hooks_helpers import (
    MAX_ATTEMPTS,
    deliveries,
    drain,
    hooks_app,
    messages,
)
from tests.factories import (
    ORDERS,
    WEBHOOKS,
    admin,
    create_item,
    order_body,
    place,
    register_webhook,
    user,
)
from tests.webhook_receiver import HOOK_PATH, webhook_receiver


async def test_every_order_event_arrives_signed_with_the_order(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            buyer = await user(client)
            item = await create_item(resources, buyer.id, stock=10)
            first = (await place(client, buyer, order_body((item, 1)))).json()
            shipped = await client.post(f"{ORDERS}/{first['id']}/ship", headers=root.headers)
            second = (await place(client, buyer, order_body((item, 2)))).json()
            cancelled = await client.post(f"{ORDERS}/{second['id']}/cancel", headers=buyer.headers)
            await drain(resources)
            emails = await messages(resources, "email.order_confirmed") + await messages(
                resources, "email.order_shipped"
            )

    expected = {
        ("order.placed", first["id"]): first,
        ("order.shipped", first["id"]): shipped.json(),
        ("order.placed", second["id"]): second,
        ("order.cancelled", second["id"]): cancelled.json(),
    }
    received = {(r.json["type"], r.json["data"]["id"]): r for r in receiver.received}
    assert len(receiver.received) == 4
    assert received.keys() == expected.keys()
    for event, request in received.items():
        assert request.path == HOOK_PATH
        assert request.headers["content-type"] == "application/json"
        assert request.signed_with(hook["secret"]), event
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
        assert request.json["data"] == expected[event]
        assert datetime.fromisoformat(request.json["timestamp"]).tzinfo is not None
        assert set(request.json) == {"type", "timestamp", "data"}
        # What the document declares under its `webhooks`.
        OrderEventPayload.model_validate(request.json)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 4
    assert not receiver.received[0].signed_with("whsec_" + "A" * 44)

    sent = {
        (email.topic, email.payload["to"], email.payload["order_id"], email.status)
        for email in emails
    }
    assert sent == {
        ("email.order_confirmed", buyer.email, first["id"], OutboxStatus.DELIVERED),
        ("email.order_confirmed", buyer.email, second["id"], OutboxStatus.DELIVERED),
        ("email.order_shipped", buyer.email, first["id"], OutboxStatus.DELIVERED),
    }


async def test_a_failing_receiver_gets_retries_of_one_delivery_with_one_id(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver(statuses=[500, 503]) as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url, events=["order.placed"])
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            order = (await place(client, buyer, order_body((item, 1)))).json()
            await drain(resources)
            [delivery] = await deliveries(client, root.headers, hook["id"])

    assert len(receiver.received) == 3
    [event_id] = {request.headers["webhook-id"] for request in receiver.received}
    assert all(request.signed_with(hook["secret"]) for request in receiver.received)
    assert all(request.json["data"]["id"] == order["id"] for request in receiver.received)
    assert delivery["event_id"] == event_id
    assert delivery["event_type"] == "order.placed"
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3
    assert delivery["last_status_code"] == 200
    assert delivery["delivered_at"] is not None
    assert delivery["last_error"] is None
    assert delivery["last_response_body"] == "ok"
    assert delivery["next_attempt_at"] is None


async def test_an_order_that_fails_sends_no_event(app: FastAPI, migrated: Settings) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            buyer = await user(client)
            item = await create_item(resources, buyer.id, stock=1)
            response = await place(client, buyer, order_body((item, 5)))
            assert response.status_code == 409
            await drain(resources)
            assert await messages(resources, "order.event") == []
            assert await deliveries(client, root.headers, hook["id"]) == []
    assert receiver.received == []


async def test_redirects_are_never_followed_and_the_delivery_ends_dead(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver(statuses=[302] * 10) as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            await place(client, buyer, order_body((item, 1)))
            await drain(resources)
            [delivery] = await deliveries(client, root.headers, hook["id"])
            [job] = await messages(resources, "webhook.delivery")

    assert [request.path for request in receiver.received] == [HOOK_PATH] * MAX_ATTEMPTS
    assert delivery["status"] == "dead"
    assert delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] == 302
    assert job.status is OutboxStatus.DEAD
    location = f"http://127.0.0.1:{receiver.port}/elsewhere"
    assert delivery["last_error"] == (
        f"redirect: HTTP 302 to {location} (redirects are never followed)"
    )
    assert job.last_error == f"DeliveryFailed: {delivery['last_error']}"


@pytest.mark.parametrize("host", ["127.0.0.1", "[64:ff9b::7f00:1]", "[2002:7f00:1::]"])
async def test_the_target_is_checked_again_before_each_delivery(
    app: FastAPI, migrated: Settings, resources: Resources, host: str
) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated) as (client, allowing):
            root = await admin(client, allowing)
            url = f"http://{host}:{receiver.port}{HOOK_PATH}"
            hook = await register_webhook(client, root, url)
            buyer = await user(client)
            item = await create_item(allowing, buyer.id)
            await place(client, buyer, order_body((item, 1)))
        # The shared app refuses private targets: the name now points somewhere it must not.
        # The buyer's welcome email, the order's confirmation and its event, which fans out...
        assert await resources.outbox.run_once() == 3
        # ...into the delivery, refused.
        assert await resources.outbox.run_once() == 1
        [job] = await messages(resources, "webhook.delivery")
        async with hooks_app(migrated) as (client, _):
            [delivery] = await deliveries(client, root.headers, hook["id"])

    assert receiver.received == []
    assert job.status is OutboxStatus.PENDING
    assert job.last_error is not None
    # Refused before any connection was tried, not failed on one.
    assert job.last_error.startswith("WebhookTargetNotAllowed:"), job.last_error
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("target not allowed: "), delivery
    assert delivery["last_response_body"] is None
    # The retry the job log scheduled.
    assert datetime.fromisoformat(delivery["next_attempt_at"]) == job.available_at


async def test_a_paused_endpoint_receives_nothing(app: FastAPI, migrated: Settings) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            await client.patch(
                f"{WEBHOOKS}/{hook['id']}", json={"is_active": False}, headers=root.headers
            )
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            await place(client, buyer, order_body((item, 1)))
            await drain(resources)
            assert await deliveries(client, root.headers, hook["id"]) == []
    assert receiver.received == []
