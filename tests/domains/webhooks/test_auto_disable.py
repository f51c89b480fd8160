"""An endpoint whose deliveries keep dying is turned off, says why, is audited and tells
the administrators; turning it on again starts the count afresh."""

from typing import Any

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.core.resources import Resources
from app.domains.audit.schemas import AuditAction
from tests.domains.webhooks.hooks_helpers import (
    MAX_ATTEMPTS,
    deliveries,
    drain,
    hooks_app,
    messages,
)
from tests.factories import (
    WEBHOOKS,
    Account,
    admin,
    create_item,
    order_body,
    place,
    register_webhook,
    user,
)
from tests.factories.audit import audit_events
from tests.webhook_receiver import webhook_receiver

DISABLE_AFTER = 2
DEAD = [500] * MAX_ATTEMPTS


async def an_order(
    client: httpx.AsyncClient, resources: Resources, buyer: Account, item: int
) -> None:
    assert (await place(client, buyer, order_body((item, 1)))).status_code == 201
    await drain(resources)


async def read(client: httpx.AsyncClient, root: Account, hook: dict[str, Any]) -> Any:
    return (await client.get(f"{WEBHOOKS}/{hook['id']}", headers=root.headers)).json()


async def test_dead_deliveries_in_a_row_turn_the_endpoint_off(
    app: FastAPI, migrated: Settings
) -> None:
    # Dead, delivered (the run ends), dead, dead: the second run reaches the threshold.
    statuses = [*DEAD, 200, *DEAD, *DEAD]
    with webhook_receiver(statuses=statuses) as receiver:
        async with hooks_app(migrated, webhook_disable_after_dead=DISABLE_AFTER) as (
            client,
            resources,
        ):
            root = await admin(client, resources)
            other_admin = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url, events=["order.placed"])
            buyer = await user(client)
            item = await create_item(resources, buyer.id, stock=100)
            await an_order(client, resources, buyer, item)
            await an_order(client, resources, buyer, item)
            await an_order(client, resources, buyer, item)
            still_on = await read(client, root, hook)
            await an_order(client, resources, buyer, item)
            turned_off = await read(client, root, hook)
            # Off means off: the next order's event is not even recorded for it.
            await an_order(client, resources, buyer, item)
            recorded = await deliveries(client, root.headers, hook["id"])
            [disabled] = await audit_events(resources, action=AuditAction.WEBHOOK_DISABLED)
            emails = [
                message.payload
                for message in await messages(resources, "email")
                if "turned off" in message.payload["subject"]
            ]

    assert still_on["is_active"] is True
    assert still_on["disabled_reason"] is None
    assert turned_off["is_active"] is False
    assert turned_off["disabled_reason"] == "failing"
    assert len(recorded) == 4
    assert len(receiver.received) == 3 * MAX_ATTEMPTS + 1
    assert disabled.actor_id is None
    assert (disabled.target_type, disabled.target_id) == ("webhook", hook["id"])
    assert disabled.details == {"reason": "failing", "dead_in_a_row": DISABLE_AFTER}
    assert sorted(email["to"] for email in emails) == sorted([root.email, other_admin.email])
    assert all(receiver.url in email["text"] for email in emails)
    assert all(f"/api/v1/webhooks/{hook['id']}" in email["text"] for email in emails)


async def test_turning_it_on_again_starts_the_count_afresh(
    app: FastAPI, migrated: Settings
) -> None:
    with webhook_receiver(statuses=DEAD * 3) as receiver:
        async with hooks_app(migrated, webhook_disable_after_dead=DISABLE_AFTER) as (
            client,
            resources,
        ):
            root = await admin(client, resources)
            hook = await register_webhook(client, root, receiver.url, events=["order.placed"])
            buyer = await user(client)
            item = await create_item(resources, buyer.id, stock=100)
            await an_order(client, resources, buyer, item)
            await an_order(client, resources, buyer, item)
            assert (await read(client, root, hook))["disabled_reason"] == "failing"
            enabled = await client.patch(
                f"{WEBHOOKS}/{hook['id']}", json={"is_active": True}, headers=root.headers
            )
            # One dead delivery after the fresh start: below the threshold again.
            await an_order(client, resources, buyer, item)
            after = await read(client, root, hook)

    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["is_active"] is True
    assert enabled.json()["disabled_reason"] is None
    assert after["is_active"] is True
    assert after["disabled_reason"] is None
    assert len(receiver.received) == 3 * MAX_ATTEMPTS
