import logging

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.jobs import Delivery, OutboxStatus, backoff_delay, enqueue
from tests.core.jobs.outbox_helpers import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    TOPIC,
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

    async def failing(_: Note, delivery: Delivery) -> None:
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

    with caplog.at_level(logging.ERROR, logger="app.core.jobs"):
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
