"""The dispatcher: claims due messages, hands each to its topic's handler, records the outcome."""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.jobs.health import FailureWatch
from app.core.jobs.inflight import InFlight, RetryAlarms
from app.core.jobs.maintenance import BACKLOG_COUNT_INTERVAL_SECONDS, Chore, Housekeeping
from app.core.jobs.messages import Delivery, Handler, MessageType
from app.core.jobs.models import OutboxMessage, OutboxStatus
from app.core.jobs.wakeups import Announcer, Listener, Signal, notify
from app.core.observability.metrics import (
    OUTBOX_BACKLOG_AGE,
    OUTBOX_DEAD,
    OUTBOX_DELIVERED,
    OUTBOX_RETRIED,
)
from app.core.tasks import stop

# Every module of the package logs as `app.core.outbox`, so operators filter one name.
logger = logging.getLogger(__package__)

# Long enough for an operator to see why, short enough not to store a whole traceback.
_LAST_ERROR_LIMIT = 2000

P = TypeVar("P", bound=BaseModel)
Clock = Callable[[], datetime]


def backoff_delay(attempt: int, *, base: float, maximum: float) -> float:
    """Seconds before retrying after failed attempt number `attempt` (1-based).

    Doubles each time up to `maximum`; the random half keeps messages that failed together
    (an SMTP outage) from all retrying in the same instant.
    """
    ceiling: float = min(maximum, base * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - spreading load, not a secret


class OutboxDispatcher:
    """Claims due messages and delivers each through the handler registered for its topic.

    `run_once()` processes one batch and waits for it. `start()` runs a background loop
    until `stop()` that keeps up to `batch_size` deliveries in flight: it claims as soon as
    it is woken and has room, so a slow delivery (a receiver that hangs until its timeout)
    holds one slot, never the messages queued behind it. It looks for work every
    `poll_interval` seconds, when one of its retries falls due, when a slot frees up after
    it ran full, and when woken: by `wake()` in this process, or by a NOTIFY from any process
    when `listen_dsn` (PostgreSQL) is given. On SQLite, where there is no NOTIFY, these
    in-process wake-ups are all there is, so none of them may wait for a batch to finish.
    With `notify_others` (PostgreSQL), `announce()` also sends that NOTIFY, coalesced
    (app.core.jobs.wakeups), whether or not this process delivers messages itself.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        batch_size: int,
        max_attempts: int,
        poll_interval: float,
        lease_seconds: float,
        backoff_base: float,
        backoff_max: float,
        retention: timedelta | None = None,
        listen_dsn: str | None = None,
        notify_others: bool = False,
        clock: Clock = utcnow,
        backlog_count_interval: float = BACKLOG_COUNT_INTERVAL_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._handlers: dict[str, Handler] = {}
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease_seconds)
        # Half the lease: the outcome is recorded well before another worker may reclaim it.
        self._delivery_timeout = lease_seconds / 2
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._housekeeping = Housekeeping(
            sessionmaker,
            retention=retention,
            clock=clock,
            topics=lambda: self._handlers,
            count_every=backlog_count_interval,
        )
        self._watch = FailureWatch(logger, "outbox dispatch")
        # Committed messages, for readers of the log in this process (live event streams).
        self.committed = Signal()
        self._listener = Listener(listen_dsn, self._notified) if listen_dsn is not None else None
        self._announcer = Announcer(lambda: notify(sessionmaker)) if notify_others else None
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._in_flight = InFlight(batch_size, on_free=self.wake)
        self._retry_alarms = RetryAlarms(self.wake)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def failing_for(self) -> float:
        """Seconds its database work has been failing; 0 when the last attempt worked."""
        return self._watch.failing_for

    def can_work(self, *, unhealthy_after: float) -> bool:
        """Running, and not failing for longer than `unhealthy_after` seconds: what a worker's
        liveness check asks (a restart may not cure an outage, but a stuck process it does)."""
        return self.running and self.failing_for < unhealthy_after

    def register(
        self, message_type: MessageType[P], handle: Callable[[P, Delivery], Awaitable[None]]
    ) -> None:
        """Deliver messages of `message_type` through `handle`; one handler per topic."""
        if message_type.topic in self._handlers:
            raise ValueError(f"a handler for {message_type.topic!r} is already registered")
        self._handlers[message_type.topic] = message_type.handler(handle)

    def register_chore(self, chore: Chore) -> None:
        """Run `chore` between claims, at most once per its interval (app.core.jobs.maintenance)."""
        self._housekeeping.add(chore)

    @property
    def chores(self) -> tuple[Chore, ...]:
        return self._housekeeping.chores

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    def _notified(self) -> None:
        self.wake()
        self.committed.send()

    def listen(self) -> None:
        """Hear other processes' commits (`committed`) even where this one delivers nothing:
        started by the first reader of the log, so a process without one holds no connection
        for it."""
        if self._listener is not None and self._listen_task is None:
            self._listen_task = asyncio.create_task(self._listener.run(), name="outbox-listener")

    async def announce(self) -> None:
        """Call after a commit that enqueued: wakes this process's dispatcher at once, and
        with `notify_others` every other one within the announcer's interval."""
        self._notified()
        if self._announcer is not None:
            self._announcer.request()

    async def run_once(self) -> int:
        """Claim one batch of due messages and deliver it; returns how many were claimed."""
        claimed = await self._claim(limit=self._batch_size)
        if claimed:
            async with asyncio.TaskGroup() as group:
                for delivery in claimed:
                    group.create_task(self._deliver(delivery))
        return len(claimed)

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the outbox dispatcher is already running")
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")
        self.listen()

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Claim nothing more, let the deliveries in flight finish, then stop; cancel those
        that outlast the grace period.

        A cancelled delivery keeps its lease and is claimed again once the lease expires,
        so stopping never loses a message.
        """
        if self._announcer is not None:
            await self._announcer.close()
        listen_task, self._listen_task = self._listen_task, None
        if listen_task is not None:
            await stop(listen_task)
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        self._retry_alarms.cancel()
        grace = self._delivery_timeout if grace_seconds is None else grace_seconds
        deadline = time.monotonic() + grace
        # The loop never waits for a delivery, so it ends as soon as a claim in progress
        # does (whose messages join those in flight).
        _, pending = await asyncio.wait({task}, timeout=grace)
        if pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._in_flight.finish(deadline)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            room = self._in_flight.room
            claimed: list[Delivery] = []
            if room > 0:
                try:
                    claimed = await self._claim(limit=room)
                    await self._housekeeping.run_if_due()
                except Exception as error:
                    # A database outage must not end the loop; the next poll tries again.
                    self._watch.failed(error, retry_in=self._poll_interval)
                else:
                    self._watch.succeeded()
                for delivery in claimed:
                    self._in_flight.start(self._deliver_reporting(delivery))
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    async def _deliver_reporting(self, delivery: Delivery) -> None:
        try:
            await self._deliver(delivery)
        except Exception as error:
            # Recording the outcome failed (the database went away): the lease expires and
            # the message is claimed again, so it is delayed, never lost.
            self._watch.failed(error, retry_in=self._poll_interval)

    async def _claim(self, *, limit: int) -> list[Delivery]:
        if not self._handlers:
            return []
        now = self._clock()
        due = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.available_at <= now,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
                # A replica only takes topics it can deliver, so during a rolling deploy an
                # older one never burns the attempts of a message meant for a newer one.
                OutboxMessage.topic.in_(list(self._handlers)),
            )
            .order_by(OutboxMessage.available_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._sessionmaker.begin() as session:
            messages = (await session.scalars(due)).all()
            for message in messages:
                OUTBOX_BACKLOG_AGE.labels(message.topic).observe(
                    max(0.0, (now - message.available_at).total_seconds())
                )
                # Counting the attempt at claim time means a message that crashes its worker
                # every time still runs out of attempts instead of looping forever.
                message.attempts += 1
                message.locked_until = now + self._lease
            return [
                Delivery(
                    id=message.id,
                    topic=message.topic,
                    payload=message.payload,
                    attempt=message.attempts,
                    last_attempt=message.attempts >= self._max_attempts,
                )
                for message in messages
            ]

    async def _deliver(self, delivery: Delivery) -> None:
        handler = self._handlers[delivery.topic]
        try:
            async with asyncio.timeout(self._delivery_timeout):
                await handler(delivery)
        except Exception as error:
            await self._record_failure(delivery, error)
        else:
            OUTBOX_DELIVERED.labels(delivery.topic).inc()
            await self._finish(
                delivery, status=OutboxStatus.DELIVERED, delivered_at=self._clock(), last_error=None
            )

    async def _record_failure(self, delivery: Delivery, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"[:_LAST_ERROR_LIMIT]
        context = {"outbox_id": delivery.id, "topic": delivery.topic, "attempt": delivery.attempt}
        if delivery.last_attempt:
            OUTBOX_DEAD.labels(delivery.topic).inc()
            logger.error(
                "outbox message %s (%s) is dead after %s attempts: %s",
                delivery.id,
                delivery.topic,
                delivery.attempt,
                reason,
                extra=context,
            )
            await self._finish(delivery, status=OutboxStatus.DEAD, last_error=reason)
            return
        OUTBOX_RETRIED.labels(delivery.topic).inc()
        delay = backoff_delay(delivery.attempt, base=self._backoff_base, maximum=self._backoff_max)
        retry_at = self._clock() + timedelta(seconds=delay)
        if self.running:
            self._retry_alarms.set(delay)
        logger.warning(
            "outbox message %s (%s) failed on attempt %s, retrying in %.0fs: %s",
            delivery.id,
            delivery.topic,
            delivery.attempt,
            delay,
            reason,
            extra=context,
        )
        await self._finish(
            delivery, status=OutboxStatus.PENDING, available_at=retry_at, last_error=reason
        )

    async def _finish(self, delivery: Delivery, **values: Any) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == delivery.id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    # Only the claim that made this attempt may record its outcome: after an
                    # expired lease another worker owns the message.
                    OutboxMessage.attempts == delivery.attempt,
                )
                .values(locked_until=None, **values)
            )
