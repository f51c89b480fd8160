"""The job log's own rules: dedup keys, the last attempt, metrics per topic, the purge."""

import asyncio
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.jobs import (
    Delivery,
    OutboxDispatcher,
    OutboxMessage,
    OutboxStatus,
    enqueue,
    purge_delivered,
    retry_dead,
)
from tests.core.jobs.outbox_helpers import (
    NOTE,
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
from tests.waiting import eventually


async def test_a_dedup_key_already_stored_adds_nothing(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        assert await NOTE.enqueue(session, Note(n=1), dedup_key="note:1")
        assert not await NOTE.enqueue(session, Note(n=2), dedup_key="note:1")
        assert await NOTE.enqueue(session, Note(n=3))
        assert await NOTE.enqueue(session, Note(n=4))
    async with sessionmaker.begin() as session:
        assert not await NOTE.enqueue(session, Note(n=5), dedup_key="note:1")

    assert [(m.payload["n"], m.dedup_key) for m in await stored(sessionmaker)] == [
        (1, "note:1"),
        (3, None),
        (4, None),
    ]


async def test_requeue_sends_a_message_again_unless_an_attempt_is_in_flight(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as session:
        # Nothing stored under the key yet: added, as enqueue would.
        assert await NOTE.requeue(session, Note(n=1), dedup_key="note:1")
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage).values(
                status=OutboxStatus.DEAD, attempts=5, locked_until=utcnow() + timedelta(minutes=1)
            )
        )
    async with sessionmaker.begin() as session:
        # Its worker holds the lease: the attempt's outcome is still to come.
        assert not await NOTE.requeue(session, Note(n=1), dedup_key="note:1")
    async with sessionmaker.begin() as session:
        await session.execute(update(OutboxMessage).values(locked_until=None))
    async with sessionmaker.begin() as session:
        assert await NOTE.requeue(session, Note(n=2), dedup_key="note:1")

    [message] = await stored(sessionmaker)
    assert (message.status, message.attempts, message.payload) == (
        OutboxStatus.PENDING,
        0,
        {"n": 2},
    )
    assert message.available_at <= utcnow()


async def test_the_handler_knows_its_last_attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    seen: list[tuple[int, bool]] = []

    async def failing(_: Note, delivery: Delivery) -> None:
        seen.append((delivery.attempt, delivery.last_attempt))
        raise ConnectionError("down")

    outbox = dispatcher(sessionmaker, failing, clock=clock, max_attempts=3)
    await commit_messages(sessionmaker, {"n": 1})
    for _ in range(3):
        await outbox.run_once()
        clock.advance(3600)
    assert seen == [(1, False), (2, False), (3, True)]


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"topic": TOPIC}) or 0.0


async def test_metrics_count_each_outcome_per_topic(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    before = {
        name: sample(name)
        for name in (
            "outbox_messages_delivered_total",
            "outbox_messages_retried_total",
            "outbox_messages_dead_total",
            "outbox_backlog_age_seconds_count",
        )
    }

    async def fails_odd(note: Note, _: Delivery) -> None:
        if note.n % 2:
            raise ConnectionError("down")

    outbox = dispatcher(sessionmaker, fails_odd, clock=clock, max_attempts=2)
    await commit_messages(sessionmaker, {"n": 1}, {"n": 2})
    await outbox.run_once()
    clock.advance(3600)
    await outbox.run_once()

    def grew(name: str) -> float:
        return sample(name) - before[name]

    assert grew("outbox_messages_delivered_total") == 1
    assert grew("outbox_messages_retried_total") == 1
    assert grew("outbox_messages_dead_total") == 1
    assert grew("outbox_backlog_age_seconds_count") == 3
    assert REGISTRY.get_sample_value(
        "outbox_backlog_age_seconds_bucket", {"topic": TOPIC, "le": "+Inf"}
    )


async def age(sessionmaker: async_sessionmaker[AsyncSession], days: float, *ids: int) -> None:
    then = utcnow() - timedelta(days=days)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(available_at=then, created_at=then, delivered_at=then)
        )


async def test_purge_removes_only_old_delivered_messages(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await commit_messages(sessionmaker, *({"n": n} for n in range(7)))
    ids = [message.id for message in await stored(sessionmaker)]
    await dispatcher(sessionmaker, Recorder(), batch_size=4).run_once()
    # Delivered long ago: 0-2; delivered recently: 3; pending long ago: 4-6.
    await age(sessionmaker, 30, *ids)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == ids[3]).values(delivered_at=utcnow())
        )

    removed = await purge_delivered(sessionmaker, before=utcnow() - timedelta(days=7), batch_size=2)

    assert removed == 3
    left = {message.id: message.status for message in await stored(sessionmaker)}
    assert left == {
        ids[3]: OutboxStatus.DELIVERED,
        **dict.fromkeys(ids[4:], OutboxStatus.PENDING),
    }


async def test_the_running_dispatcher_purges_past_the_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await commit_messages(sessionmaker, {"n": 1}, {"n": 2})
    old, _ = (message.id for message in await stored(sessionmaker))
    await dispatcher(sessionmaker, Recorder()).run_once()
    await age(sessionmaker, 8, old)
    outbox = OutboxDispatcher(
        sessionmaker,
        batch_size=10,
        max_attempts=3,
        poll_interval=3600,
        lease_seconds=30,
        backoff_base=1,
        backoff_max=1,
        retention=timedelta(days=7),
    )
    outbox.start()
    try:

        async def purged() -> bool:
            return len(await stored(sessionmaker)) == 1

        await eventually(purged)
    finally:
        await outbox.stop()
    [kept] = await stored(sessionmaker)
    assert kept.id != old


async def test_retrying_dead_messages_gives_them_fresh_attempts(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    failures = 2

    async def recovers(_: Note, __: Delivery) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("down")

    await commit_messages(sessionmaker, {"n": 1}, {"n": 2})
    outbox = dispatcher(sessionmaker, recovers, clock=clock, max_attempts=1)
    await outbox.run_once()
    first, second = await stored(sessionmaker)
    assert first.status is second.status is OutboxStatus.DEAD

    async with sessionmaker.begin() as session:
        assert await retry_dead(session, [first.id]) == 1
    assert await outbox.run_once() == 1
    async with sessionmaker.begin() as session:
        assert await retry_dead(session, None) == 1
    assert await outbox.run_once() == 1
    assert [m.status for m in await stored(sessionmaker)] == [OutboxStatus.DELIVERED] * 2


async def test_the_running_dispatcher_reports_the_backlog_by_topic(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    release = asyncio.Event()

    async def waits(_: Note, __: Delivery) -> None:
        await release.wait()

    def pending(topic: str) -> float | None:
        return REGISTRY.get_sample_value("outbox_messages_pending", {"topic": topic})

    await commit_messages(sessionmaker, {"n": 1}, {"n": 2})
    # Due, for a topic nothing here delivers; and not due yet.
    await commit_messages(sessionmaker, {"n": 3}, topic="test.unhandled")
    async with sessionmaker.begin() as session:
        await enqueue(session, TOPIC, {"n": 4})
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.payload["n"].as_integer() == 4)
            .values(available_at=utcnow() + timedelta(hours=1))
        )

    async def counted(topic: str, count: int) -> bool:
        return pending(topic) == count

    outbox = dispatcher(sessionmaker, waits, poll_interval=0.05, backlog_count_interval=0)
    outbox.start()
    try:
        # Claimed and in flight, still not delivered: both count.
        await eventually(lambda: counted(TOPIC, 2))
        assert pending("test.unhandled") == 1
        release.set()
        # Delivered: the topic reads 0, not its last count.
        await eventually(lambda: counted(TOPIC, 0))
        assert pending("test.unhandled") == 1
    finally:
        release.set()
        await outbox.stop()
