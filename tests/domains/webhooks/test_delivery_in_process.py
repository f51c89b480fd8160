"""Webhooks delivered by the app's own dispatcher, as `make run` runs it on the embedded
database: one process, no NOTIFY, every wake-up in process, polling every
OUTBOX_POLL_INTERVAL (5 s). Each event reaches a real receiver within two seconds, however
its siblings fare."""

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.core.resources import Resources
from app.main import create_app
from tests.conftest import running, variant
from tests.factories import admin, create_item, order_body, place, register_webhook, user
from tests.webhook_receiver import Receiver, webhook_receiver

PROMPTLY = 2.0
POLL_INTERVAL = 5.0
# A receiver that never answers holds its delivery this long before it counts as failed.
HUNG_FOR = 3.0


@contextmanager
def hung_receiver() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/orders"


async def received_within(receiver: Receiver, count: int, seconds: float) -> float:
    """How long until the receiver has `count` requests; fails past `seconds`."""
    started = time.monotonic()
    while len(receiver.received) < count:
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"{len(receiver.received)} of {count} after {elapsed:.1f} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def shop(client: httpx.AsyncClient, resources: Resources) -> tuple[object, int]:
    buyer = await user(client)
    return buyer, await create_item(resources, buyer.id, stock=100)


async def test_events_arrive_promptly_while_another_endpoint_hangs(
    app: FastAPI, migrated: Settings
) -> None:
    settings = variant(
        migrated,
        outbox_enabled=True,
        outbox_poll_interval=POLL_INTERVAL,
        webhook_allow_private_targets=True,
        webhook_timeout_seconds=HUNG_FOR,
        outbox_retry_base_seconds=0.2,
        outbox_retry_max_seconds=0.4,
    )
    application = create_app(settings)
    with webhook_receiver() as receiver, hung_receiver() as hung_url:
        async with running(application) as client:
            resources: Resources = application.state.resources
            root = await admin(client, resources)
            await register_webhook(client, root, receiver.url)
            await register_webhook(client, root, hung_url)
            buyer = await user(client)
            item = await create_item(resources, buyer.id, stock=100)
            # Each order's event fans out to both endpoints; the hung one's delivery and its
            # retries are in flight the whole time.
            for count in range(1, 5):
                assert (await place(client, buyer, order_body((item, 1)))).status_code == 201
                await received_within(receiver, count, PROMPTLY)


async def test_a_retry_goes_out_when_it_falls_due_not_at_the_next_poll(
    app: FastAPI, migrated: Settings
) -> None:
    settings = variant(
        migrated,
        outbox_enabled=True,
        outbox_poll_interval=POLL_INTERVAL,
        webhook_allow_private_targets=True,
        outbox_retry_base_seconds=0.2,
        outbox_retry_max_seconds=0.4,
    )
    application = create_app(settings)
    with webhook_receiver(statuses=[500, 503]) as receiver:
        async with running(application) as client:
            resources: Resources = application.state.resources
            root = await admin(client, resources)
            await register_webhook(client, root, receiver.url)
            buyer = await user(client)
            item = await create_item(resources, buyer.id)
            assert (await place(client, buyer, order_body((item, 1)))).status_code == 201
            # Two failures, each retried within 0.4 s: well inside one poll interval.
            await received_within(receiver, 3, PROMPTLY)
    assert len({request.headers["webhook-id"] for request in receiver.received}) == 1
