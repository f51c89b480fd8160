"""What the webhook delivery tests share: the service with deliveries it can make to a
receiver on 127.0.0.1, a dispatcher run until the job log is idle, and the records."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.jobs import OutboxMessage, OutboxStatus
from app.core.resources import Resources
from app.main import create_app
from tests.conftest import running, variant
from tests.factories import WEBHOOKS

MAX_ATTEMPTS = 4


@asynccontextmanager
async def hooks_app(
    settings: Settings, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    """The service with private targets allowed (the receiver is on 127.0.0.1) and retries
    that fall due within milliseconds."""
    quick = {
        "webhook_allow_private_targets": True,
        "outbox_retry_base_seconds": 0.01,
        "outbox_retry_max_seconds": 0.02,
        "outbox_max_attempts": MAX_ATTEMPTS,
    }
    application = create_app(variant(settings, **(quick | overrides)))
    async with running(application) as client:
        yield client, application.state.resources


async def drain(resources: Resources, *, seconds: float = 15.0) -> None:
    """Run the dispatcher until no message is pending any more."""
    pending = select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING)
    async with asyncio.timeout(seconds):
        while True:
            if await resources.outbox.run_once():
                continue
            async with resources.sessionmaker() as session:
                if not await session.scalar(pending):
                    return
            await asyncio.sleep(0.01)


async def messages(resources: Resources, topic: str) -> list[OutboxMessage]:
    async with resources.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id)
        )
        return list(rows)


async def deliveries(
    client: httpx.AsyncClient, headers: dict[str, str], hook_id: int, **filters: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{WEBHOOKS}/{hook_id}/deliveries", params=filters, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
