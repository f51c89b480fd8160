"""What an operator does to a webhook: send a delivery again, ping the endpoint, rotate its
secret; checked at a real receiver, the rotation with the Standard Webhooks library."""

from typing import Any

import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.core.config import Settings
from app.domains.audit.schemas import AuditAction
from app.domains.webhooks.schemas import PingPayload
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
from tests.factories.audit import audit_events
from tests.problems import assert_problem
from tests.webhook_receiver import Received, webhook_receiver


def verify(secret: str, request: Received) -> Any:
    """The receiver's check, by the reference library: raises unless a signature matches."""
    return Webhook(secret).verify(request.body, request.headers)


async def test_a_dead_delivery_is_sent_again_with_its_webhook_id(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver(statuses=[500] * MAX_ATTEMPTS) as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url, events=["order.placed"])
            other = await register_webhook(client, root, receiver.url, events=["order.shipped"])
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            await place(client, buyer, order_body((item, 1)))
            await drain(resources)
            [dead] = await deliveries(client, root.headers, hook["id"])
            path = f"{WEBHOOKS}/{hook['id']}/deliveries/{dead['id']}/redeliver"

            again = await client.post(path, headers=root.headers)
            await drain(resources)
            [delivered] = await deliveries(client, root.headers, hook["id"])
            # A delivered one can be sent again too: the receiver lost it, say.
            once_more = await client.post(path, headers=root.headers)
            await drain(resources)
            foreign = await client.post(
                f"{WEBHOOKS}/{other['id']}/deliveries/{dead['id']}/redeliver",
                headers=root.headers,
            )
            unknown = await client.post(
                f"{WEBHOOKS}/{hook['id']}/deliveries/999999/redeliver", headers=root.headers
            )
            [event, _] = await audit_events(resources, action=AuditAction.WEBHOOK_REDELIVERED)

    assert dead["status"] == "dead"
    assert again.status_code == 202, again.text
    assert again.json()["id"] == dead["id"]
    assert again.json()["status"] == "pending"
    assert again.json()["next_attempt_at"] is not None
    # Why it failed stays until an attempt says otherwise.
    assert again.json()["last_error"] == "HTTP status 500"
    assert delivered["status"] == "delivered"
    assert delivered["attempts"] == MAX_ATTEMPTS + 1
    assert delivered["last_error"] is None
    assert once_more.status_code == 202
    assert len(receiver.received) == MAX_ATTEMPTS + 2
    assert {request.headers["webhook-id"] for request in receiver.received} == {dead["event_id"]}
    assert len({request.body for request in receiver.received}) == 1
    assert_problem(foreign, 404, "urn:problem-type:webhook-delivery-not-found")
    assert_problem(unknown, 404, "urn:problem-type:webhook-delivery-not-found")
    assert event.actor_id == root.id
    assert (event.target_type, event.target_id) == ("webhook", hook["id"])
    assert event.details == {"delivery_id": dead["id"], "event_id": dead["event_id"]}


async def test_a_ping_is_a_signed_delivery_of_its_own(app: FastAPI, migrated: Settings) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            ping = await client.post(f"{WEBHOOKS}/{hook['id']}/ping", headers=root.headers)
            await drain(resources)
            [delivery] = await deliveries(client, root.headers, hook["id"])
            pings = await deliveries(client, root.headers, hook["id"], event_type="webhook.ping")
            missing = await client.post(f"{WEBHOOKS}/999999/ping", headers=root.headers)

    assert ping.status_code == 202, ping.text
    assert ping.json()["event_type"] == "webhook.ping"
    assert ping.json()["status"] == "pending"
    [request] = receiver.received
    assert request.json["type"] == "webhook.ping"
    assert request.json["data"] == {"webhook_id": hook["id"]}
    PingPayload.model_validate(request.json)
    assert request.headers["webhook-id"] == ping.json()["event_id"]
    assert verify(hook["secret"], request) == request.json
    assert delivery["id"] == ping.json()["id"]
    assert delivery["status"] == "delivered"
    assert pings == [delivery]
    assert_problem(missing, 404, "urn:problem-type:webhook-not-found")


async def test_during_a_rotation_every_delivery_carries_both_signatures(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            rotated = await client.post(
                f"{WEBHOOKS}/{hook['id']}/rotate-secret", headers=root.headers
            )
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            await place(client, buyer, order_body((item, 1)))
            await client.post(f"{WEBHOOKS}/{hook['id']}/ping", headers=root.headers)
            await drain(resources)
            [event] = await audit_events(resources, action=AuditAction.WEBHOOK_SECRET_ROTATED)

    assert rotated.status_code == 200, rotated.text
    assert "no-store" in rotated.headers["cache-control"]
    new = rotated.json()["secret"]
    assert set(rotated.json()) == {"secret"}
    assert new.startswith("whsec_")
    assert new != hook["secret"]
    assert len(receiver.received) == 2
    for request in receiver.received:
        first, second = request.headers["webhook-signature"].split(" ")
        # Each secret verifies on its own: a receiver holding either accepts the delivery.
        assert verify(new, request) == request.json
        assert verify(hook["secret"], request) == request.json
        # The new secret's signature comes first, then the old one's.
        assert verify(new, replace_signature(request, first)) == request.json
        assert verify(hook["secret"], replace_signature(request, second)) == request.json
    assert event.actor_id == root.id
    assert hook["secret"] not in str(event.details)
    assert new not in str(event.details)


async def test_once_the_overlap_ends_only_the_new_secret_signs(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver() as receiver:
        async with hooks_app(migrated, webhook_secret_overlap_seconds=0) as (client, resources):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url)
            rotated = await client.post(
                f"{WEBHOOKS}/{hook['id']}/rotate-secret", headers=root.headers
            )
            await client.post(f"{WEBHOOKS}/{hook['id']}/ping", headers=root.headers)
            await drain(resources)

    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert verify(rotated.json()["secret"], request) == request.json
    with pytest.raises(WebhookVerificationError):
        verify(hook["secret"], request)


def replace_signature(request: Received, signature: str) -> Received:
    return Received(
        path=request.path,
        headers=request.headers | {"webhook-signature": signature},
        body=request.body,
    )
