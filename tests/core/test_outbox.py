import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import utcnow
from app.core.outbox import (
    Delivery,
    Handler,
    OutboxDispatcher,
    OutboxMessage,
    OutboxStatus,
    backoff_delay,
    enqueue,
)
from app.core.resources import Resources

TOPIC = "test.note"
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

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)


@pytest.fixture
def sessionmaker(resources: Resources) -> async_sessionmaker[AsyncSession]:
    return resources.sessionmaker


def dispatcher(
    sessionmaker: async_sessionmaker[AsyncSession],
    handler: Handler,
    *,
    clock: Clock | None = None,
    batch_size: int = 10,
    max_attempts: int = 3,
    poll_interval: float = 3600.0,
) -> OutboxDispatcher:
    return OutboxDispatcher(
        sessionmaker,
        {TOPIC: handler},
        batch_size=batch_size,
        max_attempts=max_attempts,
        poll_interval=poll_interval,
        lease_seconds=LEASE_SECONDS,
        backoff_base=BACKOFF_BASE,
        backoff_max=BACKOFF_MAX,
        clock=clock or utcnow,
    )


async def commit_messages(
    sessionmaker: async_sessionmaker[AsyncSession], *payloads: dict[str, Any], topic: str = TOPIC
) -> None:
    async with sessionmaker.begin() as session:
        for payload in payloads:
            await enqueue(session, topic, payload)


async def stored(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_a_message_in_a_rolled_back_transaction_is_never_sent(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    recorder = Recorder()
    async with sessionmaker() as session:
        await enqueue(session, TOPIC, {"n": 1})
        await session.flush()
        await session.rollback()

    assert await dispatcher(sessionmaker, recorder).run_once() == 0
    assert recorder.deliveries == []
    assert await stored(sessionmaker) == []


async def test_committed_messages_are_delivered_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    recorder = Recorder()
    outbox = dispatcher(sessionmaker, recorder)
    await commit_messages(sessionmaker, {"n": 1}, {"n": 2})

    assert await outbox.run_once() == 2
    assert await outbox.run_once() == 0

    assert sorted(d.payload["n"] for d in recorder.deliveries) == [1, 2]
    assert all(d.topic == TOPIC and d.attempt == 1 for d in recorder.deliveries)
    for message in await stored(sessionmaker):
        assert message.status is OutboxStatus.DELIVERED
        assert message.delivered_at is not None
        assert message.locked_until is None
        assert message.attempts == 1


async def test_a_batch_claims_at_most_batch_size_oldest_first(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    recorder = Recorder()
    outbox = dispatcher(sessionmaker, recorder, batch_size=2)
    await commit_messages(sessionmaker, {"n": 1}, {"n": 2}, {"n": 3})

    assert await outbox.run_once() == 2
    assert sorted(d.payload["n"] for d in recorder.deliveries) == [1, 2]
    assert await outbox.run_once() == 1


async def test_a_dispatcher_leaves_topics_it_has_no_handler_for(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await commit_messages(sessionmaker, {"n": 1}, topic="test.other")

    assert await dispatcher(sessionmaker, Recorder()).run_once() == 0
    [message] = await stored(sessionmaker)
    assert message.status is OutboxStatus.PENDING
    assert message.attempts == 0


async def test_a_failing_handler_is_retried_with_backoff_then_dead(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    calls = 0

    async def failing(delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"mail server down ({delivery.attempt})")

    outbox = dispatcher(sessionmaker, failing, clock=clock, max_attempts=3)
    await commit_messages(sessionmaker, {"n": 1})

    for attempt in (1, 2):
        assert await outbox.run_once() == 1
        [message] = await stored(sessionmaker)
        assert message.status is OutboxStatus.PENDING
        assert message.attempts == attempt
        assert message.locked_until is None
        assert message.last_error == f"ConnectionError: mail server down ({attempt})"
        delay = (message.available_at - clock.now).total_seconds()
        ceiling = BACKOFF_BASE * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
        # Not due yet: the next batch leaves it alone.
        assert await outbox.run_once() == 0
        clock.advance(delay)

    with caplog.at_level(logging.ERROR, logger="app.core.outbox"):
        assert await outbox.run_once() == 1

    [message] = await stored(sessionmaker)
    assert message.status is OutboxStatus.DEAD
    assert message.attempts == 3
    assert message.last_error == "ConnectionError: mail server down (3)"
    clock.advance(BACKOFF_MAX)
    assert await outbox.run_once() == 0
    assert calls == 3
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "dead after 3 attempts" in record.getMessage()


def test_backoff_doubles_up_to_the_maximum_with_jitter() -> None:
    for attempt, ceiling in [(1, 10.0), (2, 20.0), (5, 160.0), (20, 3600.0)]:
        delays = [backoff_delay(attempt, base=10.0, maximum=3600.0) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1


async def test_an_expired_lease_is_claimed_again(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    started = asyncio.Event()

    async def hangs(_: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()

    crashed = dispatcher(sessionmaker, hangs, clock=clock)
    await commit_messages(sessionmaker, {"n": 1})
    # A worker that dies mid-delivery: its claim committed, its outcome never recorded.
    worker = asyncio.create_task(crashed.run_once())
    await started.wait()
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker

    recorder = Recorder()
    survivor = dispatcher(sessionmaker, recorder, clock=clock)
    assert await survivor.run_once() == 0, "the lease still holds"
    clock.advance(LEASE_SECONDS)
    assert await survivor.run_once() == 1

    [delivery] = recorder.deliveries
    assert delivery.attempt == 2
    [message] = await stored(sessionmaker)
    assert message.status is OutboxStatus.DELIVERED


async def test_a_stale_worker_cannot_overwrite_the_new_owners_outcome(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow_then_fails(_: Delivery) -> None:
        started.set()
        await release.wait()
        raise ConnectionError("too late")

    await commit_messages(sessionmaker, {"n": 1})
    stale = asyncio.create_task(dispatcher(sessionmaker, slow_then_fails, clock=clock).run_once())
    await started.wait()
    clock.advance(LEASE_SECONDS)
    assert await dispatcher(sessionmaker, Recorder(), clock=clock).run_once() == 1
    release.set()
    await stale

    [message] = await stored(sessionmaker)
    assert message.status is OutboxStatus.DELIVERED
    assert message.last_error is None


async def test_wake_delivers_at_once_and_stop_is_clean(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    delivered = asyncio.Event()

    async def handler(_: Delivery) -> None:
        delivered.set()

    # An hour between polls: only wake() can explain a prompt delivery.
    outbox = dispatcher(sessionmaker, handler, poll_interval=3600.0)
    outbox.start()
    try:
        await commit_messages(sessionmaker, {"n": 1})
        outbox.wake()
        async with asyncio.timeout(10):
            await delivered.wait()
    finally:
        await outbox.stop()
    assert not outbox.running
    [message] = await stored(sessionmaker)
    assert message.status is OutboxStatus.DELIVERED


async def test_stopping_mid_delivery_keeps_the_message_for_a_retry(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    started = asyncio.Event()

    async def hangs(_: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()

    outbox = dispatcher(sessionmaker, hangs, clock=clock)
    outbox.start()
    await commit_messages(sessionmaker, {"n": 1})
    outbox.wake()
    await started.wait()
    await outbox.stop(grace_seconds=0)
    assert not outbox.running

    recorder = Recorder()
    clock.advance(LEASE_SECONDS)
    assert await dispatcher(sessionmaker, recorder, clock=clock).run_once() == 1
    assert [d.payload for d in recorder.deliveries] == [{"n": 1}]


async def test_the_loop_survives_a_failing_batch(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    failed = asyncio.Event()
    delivered = asyncio.Event()

    class FlakySessions:
        """Fails the first claim as a database outage would, then behaves."""

        def begin(self) -> Any:
            if not failed.is_set():
                failed.set()
                raise ConnectionError("database unavailable")
            return sessionmaker.begin()

    async def handler(_: Delivery) -> None:
        delivered.set()

    outbox = dispatcher(FlakySessions(), handler)  # type: ignore[arg-type]
    await commit_messages(sessionmaker, {"n": 1})
    with caplog.at_level(logging.ERROR, logger="app.core.outbox"):
        outbox.start()
        try:
            async with asyncio.timeout(10):
                await failed.wait()
                # The loop is now waiting for the next poll; a wake stands in for it.
                outbox.wake()
                await delivered.wait()
        finally:
            await outbox.stop()
    assert any("outbox dispatch failed" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
async def test_a_row_locked_by_another_claim_is_skipped_not_waited_for(
    postgres_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    recorder = Recorder()
    await commit_messages(sessionmaker, {"n": 1}, {"n": 2})
    first_id = (await stored(sessionmaker))[0].id

    async with sessionmaker.begin() as other_claim:
        # Another dispatcher is mid-claim on the first row and holds its row lock.
        await other_claim.execute(
            text("SELECT id FROM outbox_messages WHERE id = :id FOR UPDATE"), {"id": first_id}
        )
        async with asyncio.timeout(10):
            assert await dispatcher(sessionmaker, recorder).run_once() == 1

    assert [d.payload for d in recorder.deliveries] == [{"n": 2}]


@pytest.mark.postgres
async def test_concurrent_dispatchers_deliver_each_message_exactly_once(
    postgres_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    delivered: list[int] = []

    async def handler(delivery: Delivery) -> None:
        # Yield so the two dispatchers' claims and deliveries interleave.
        await asyncio.sleep(0)
        delivered.append(delivery.payload["n"])

    await commit_messages(sessionmaker, *({"n": n} for n in range(200)))
    workers = [dispatcher(sessionmaker, handler, batch_size=7) for _ in range(4)]

    async def drain(outbox: OutboxDispatcher) -> int:
        claimed = 0
        while batch := await outbox.run_once():
            claimed += batch
        return claimed

    counts = await asyncio.gather(*(drain(outbox) for outbox in workers))

    assert sorted(delivered) == list(range(200))
    assert sum(counts) == 200
    assert sum(1 for count in counts if count) > 1, "the work was shared"
