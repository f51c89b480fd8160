"""A hand-driven clock, a recording handler and builders shared by the outbox tests."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.jobs import Delivery, MessageType, OutboxDispatcher, OutboxMessage, enqueue
from app.core.resources import Resources


class Note(BaseModel):
    n: int


NOTE = MessageType("test.note", Note)
TOPIC = NOTE.topic
NoteHandler = Callable[[Note, Delivery], Awaitable[None]]
LEASE_SECONDS = 30.0
BACKOFF_BASE = 10.0
BACKOFF_MAX = 3600.0


class Clock:
    """A clock the test moves by hand, so retries and leases need no waiting."""

    def __init__(self) -> None:
        # A moment ahead of real time, so messages enqueued during the test are already due.
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Recorder:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def __call__(self, _: Note, delivery: Delivery) -> None:
        self.deliveries.append(delivery)


@pytest.fixture
def sessionmaker(resources: Resources) -> async_sessionmaker[AsyncSession]:
    return resources.sessionmaker


def dispatcher(
    sessionmaker: async_sessionmaker[AsyncSession],
    handler: NoteHandler,
    *,
    clock: Clock | None = None,
    batch_size: int = 10,
    max_attempts: int = 3,
    poll_interval: float = 3600.0,
    listen_dsn: str | None = None,
    backlog_count_interval: float = 10.0,
) -> OutboxDispatcher:
    outbox = OutboxDispatcher(
        sessionmaker,
        batch_size=batch_size,
        max_attempts=max_attempts,
        poll_interval=poll_interval,
        lease_seconds=LEASE_SECONDS,
        backoff_base=BACKOFF_BASE,
        backoff_max=BACKOFF_MAX,
        clock=clock or utcnow,
        listen_dsn=listen_dsn,
        backlog_count_interval=backlog_count_interval,
    )
    outbox.register(NOTE, handler)
    return outbox


async def commit_messages(
    sessionmaker: async_sessionmaker[AsyncSession], *payloads: dict[str, Any], topic: str = TOPIC
) -> None:
    async with sessionmaker.begin() as session:
        for payload in payloads:
            await enqueue(session, topic, payload)


async def stored(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
