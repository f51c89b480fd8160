import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.jobs import Delivery, OutboxDispatcher, OutboxStatus
from tests.core.jobs.outbox_helpers import (
    LEASE_SECONDS,
    Clock,
    Note,
    Recorder,
    commit_messages,
    dispatcher,
    stored,
)
from tests.core.jobs.outbox_helpers import (
    sessionmaker as sessionmaker,  # a fixture, so pytest finds it
)


async def test_an_expired_lease_is_claimed_again(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    started = asyncio.Event()

    async def hangs(_: Note, __: Delivery) -> None:
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

    async def slow_then_fails(_: Note, __: Delivery) -> None:
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

    async def handler(_: Note, __: Delivery) -> None:
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

    async def hangs(_: Note, __: Delivery) -> None:
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

    async def handler(_: Note, __: Delivery) -> None:
        delivered.set()

    outbox = dispatcher(FlakySessions(), handler)  # type: ignore[arg-type]
    await commit_messages(sessionmaker, {"n": 1})
    with caplog.at_level(logging.ERROR, logger="app.core.jobs"):
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

    async def handler(_: Note, delivery: Delivery) -> None:
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


class OutageSessions:
    """A database that fails `outage` claims in a row, as one that is down would, then
    answers again."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], outage: int) -> None:
        self._sessionmaker = sessionmaker
        self.left = outage
        self.over = asyncio.Event()

    def begin(self) -> Any:
        if self.left:
            self.left -= 1
            raise ConnectionError("database unavailable")
        self.over.set()
        return self._sessionmaker.begin()

    def __call__(self) -> Any:
        return self._sessionmaker()


async def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    sessions = OutageSessions(sessionmaker, outage=20)
    delivered = asyncio.Event()

    async def handler(_: Note, __: Delivery) -> None:
        delivered.set()

    # Polling every 10 ms: twenty failed claims in a fraction of a second.
    outbox = dispatcher(sessions, handler, poll_interval=0.01)  # type: ignore[arg-type]
    await commit_messages(sessionmaker, {"n": 1})
    unhealthy_seen = False
    with caplog.at_level(logging.DEBUG, logger="app.core.jobs"):
        outbox.start()
        try:
            async with asyncio.timeout(10):
                while sessions.left:
                    unhealthy_seen |= not outbox.can_work(unhealthy_after=0.05)
                    await asyncio.sleep(0.005)
                await delivered.wait()
        finally:
            await outbox.stop()

    records = [r for r in caplog.records if r.name == "app.core.jobs"]
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "outbox dispatch failed" in errors[0].getMessage()
    assert "ConnectionError: database unavailable" in errors[0].getMessage()
    recovered = [r for r in records if r.levelno == logging.WARNING and "again" in r.getMessage()]
    assert len(recovered) == 1, [r.getMessage() for r in records if r.levelno >= logging.INFO]
    assert (
        sum(r.levelno == logging.DEBUG and "still failing" in r.getMessage() for r in records) == 19
    )
    # Failing for longer than the threshold made the dispatcher unfit to live; working
    # again made it fit.
    assert unhealthy_seen
    assert outbox.failing_for == 0
    outbox.start()
    try:
        assert outbox.can_work(unhealthy_after=0.05)
    finally:
        await outbox.stop()
    assert not outbox.can_work(unhealthy_after=60)  # a stopped dispatcher cannot work
