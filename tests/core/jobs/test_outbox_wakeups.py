"""The wake-up after commits: one NOTIFY for many commits, at most one per interval, sent after
the commits that asked for it; and the chores the dispatchers run between claims."""

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.jobs import Chore
from app.core.jobs.maintenance import Housekeeping
from app.core.jobs.wakeups import Announcer
from tests.core.jobs.outbox_helpers import Recorder, dispatcher
from tests.core.jobs.outbox_helpers import (
    sessionmaker as sessionmaker,  # a fixture, so pytest finds it
)


class Sends:
    """A NOTIFY that records itself, and can be held until released."""

    def __init__(self, *, failures: int = 0) -> None:
        self.count = 0
        self.failures = failures
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> None:
        self.count += 1
        self.started.set()
        await self.release.wait()
        if self.count <= self.failures:
            raise OSError("the database went away")


async def test_commits_before_the_notify_goes_out_share_it() -> None:
    sends = Sends()
    announcer = Announcer(sends, interval=0.05)
    for _ in range(100):
        announcer.request()
    await announcer.close()
    assert sends.count == 1


async def test_commits_while_one_is_sent_share_the_next_one() -> None:
    sends = Sends()
    sends.release.clear()
    announcer = Announcer(sends, interval=0.05)
    announcer.request()
    await sends.started.wait()
    for _ in range(50):
        announcer.request()
    sends.release.set()
    await announcer.close()
    assert sends.count == 2


async def test_a_failed_notify_leaves_the_next_commits_theirs() -> None:
    sends = Sends(failures=1)
    announcer = Announcer(sends, interval=0.05)
    announcer.request()
    await announcer.close()
    announcer.request()
    await announcer.close()
    assert sends.count == 2


async def test_a_chore_runs_once_per_interval(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    runs: list[int] = []

    async def purge() -> int:
        runs.append(1)
        return 3

    housekeeping = Housekeeping(sessionmaker, retention=None, clock=utcnow, topics=list)
    housekeeping.add(Chore("purged", every_seconds=3600, run=purge))
    with pytest.raises(ValueError, match="already registered"):
        housekeeping.add(Chore("purged", every_seconds=1, run=purge))
    await housekeeping.run_if_due()
    await housekeeping.run_if_due()
    assert runs == [1]


async def test_a_running_dispatcher_does_its_chores(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ran = asyncio.Event()

    async def chore() -> int:
        ran.set()
        return 0

    outbox = dispatcher(sessionmaker, Recorder())
    outbox.register_chore(Chore("noted", every_seconds=3600, run=chore))
    outbox.start()
    try:
        async with asyncio.timeout(10):
            await ran.wait()
    finally:
        await outbox.stop()
