"""What operators do with the job log: count its backlog, list dead messages, retry them,
purge delivered ones; and the chores running dispatchers do between claims for the rest of
the application (purging what expires elsewhere)."""

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.repository import PURGE_BATCH_SIZE, delete_in_batches
from app.core.jobs.models import OutboxMessage, OutboxStatus
from app.core.observability.metrics import OUTBOX_PENDING

logger = logging.getLogger(__package__)

PURGE_INTERVAL_SECONDS = 3600.0
# About a scrape interval: the gauge is never much staler than Prometheus reads it.
BACKLOG_COUNT_INTERVAL_SECONDS = 10.0


async def dead_messages(session: AsyncSession, *, limit: int) -> list[OutboxMessage]:
    """The newest dead messages first."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(rows)


async def pending_by_topic(session: AsyncSession, *, now: datetime) -> dict[str, int]:
    """How many messages are due and not yet delivered, by topic: the backlog."""
    rows = await session.execute(
        select(OutboxMessage.topic, func.count())
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.available_at <= now)
        .group_by(OutboxMessage.topic)
    )
    return dict(rows.all())


async def retry_dead(session: AsyncSession, ids: Sequence[int] | None) -> int:
    """Give dead messages (these ids, or all when None) a fresh set of attempts, due now.

    `last_error` stays until the next attempt replaces it, so the cause remains visible.
    """
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, available_at=utcnow(), locked_until=None)
        .execution_options(synchronize_session=False)
    )
    if ids is not None:
        statement = statement.where(OutboxMessage.id.in_(list(ids)))
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount


async def purge_delivered(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    before: datetime,
    batch_size: int = PURGE_BATCH_SIZE,
) -> int:
    """Delete messages delivered before `before`, a batch per transaction; how many went."""
    delivered = select(OutboxMessage.id).where(
        OutboxMessage.status == OutboxStatus.DELIVERED,
        # Implied by the next condition (nothing is delivered before it falls due), and
        # what lets the (status, available_at) index find the rows.
        OutboxMessage.available_at < before,
        OutboxMessage.delivered_at < before,
    )
    return await delete_in_batches(sessionmaker, OutboxMessage, delivered, batch_size=batch_size)


@dataclass(frozen=True, slots=True)
class Chore:
    """Periodic maintenance that a domain hands the dispatchers (the composition root
    registers it): `run` is called at most once per `every_seconds` by each running
    dispatcher and returns how many rows it handled, for the log. Any number of processes
    may run it at once, so it must be safe to repeat."""

    name: str
    every_seconds: float
    run: Callable[[], Awaitable[int]]


class Housekeeping:
    """What a running dispatcher does between claims, each at its own pace: purging delivered
    messages past their retention (at most hourly), counting the backlog for the
    `outbox_messages_pending` gauge (about every scrape), and the registered chores."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retention: timedelta | None,
        clock: Callable[[], datetime],
        topics: Callable[[], Iterable[str]],
        count_every: float = BACKLOG_COUNT_INTERVAL_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._retention = retention
        self._clock = clock
        # The topics a dispatcher delivers, reported as 0 rather than absent when idle.
        self._topics = topics
        self._count_every = count_every
        self._counted: set[str] = set()
        self._next_purge = 0.0
        self._next_count = 0.0
        self._chores: list[Chore] = []
        self._next_chore: dict[str, float] = {}

    @property
    def chores(self) -> tuple[Chore, ...]:
        return tuple(self._chores)

    def add(self, chore: Chore) -> None:
        if chore.name in self._next_chore:
            raise ValueError(f"a chore named {chore.name!r} is already registered")
        self._chores.append(chore)
        self._next_chore[chore.name] = 0.0

    async def run_if_due(self) -> None:
        now = time.monotonic()
        for chore in self._chores:
            if now >= self._next_chore[chore.name]:
                self._next_chore[chore.name] = now + chore.every_seconds
                done = await chore.run()
                if done:
                    logger.info("%s: %s", chore.name, done)
        if self._retention is not None and now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL_SECONDS
            removed = await purge_delivered(
                self._sessionmaker, before=self._clock() - self._retention
            )
            if removed:
                logger.info("purged %s delivered outbox messages", removed)
        if now >= self._next_count:
            self._next_count = now + self._count_every
            async with self._sessionmaker() as session:
                pending = await pending_by_topic(session, now=self._clock())
            # A topic whose backlog cleared reads 0 rather than its last count.
            for topic in self._counted | pending.keys() | set(self._topics()):
                OUTBOX_PENDING.labels(topic).set(pending.get(topic, 0))
            self._counted |= pending.keys()
