"""Dispatchers in separate processes on one PostgreSQL database, as replicas run them."""

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db.engine import driver_dsn
from app.core.jobs import OutboxStatus
from app.core.jobs.wakeups import APPLICATION_NAME
from app.core.resources import Resources
from tests.core.jobs.outbox_helpers import Recorder, commit_messages, dispatcher, stored
from tests.core.jobs.outbox_helpers import (
    sessionmaker as sessionmaker,  # a fixture, so pytest finds it
)
from tests.factories import create_item, order_body, place, register, user
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
LISTENING = "listening on channel"

pytestmark = pytest.mark.postgres


class Replica:
    """A dispatcher process and the lines it has printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def wait_for(self, text: str, *, seconds: float = 20.0) -> str:
        assert self.process.stdout is not None
        for line in self.lines:
            if text in line:
                return line
        async with asyncio.timeout(seconds):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, "the process exited:\n" + "".join(self.lines)
                line = raw.decode()
                self.lines.append(line)
                if text in line:
                    return line

    async def read_for(self, seconds: float) -> None:
        """Collect whatever it prints during `seconds`."""
        assert self.process.stdout is not None
        with_timeout = asyncio.timeout(seconds)
        try:
            async with with_timeout:
                while raw := await self.process.stdout.readline():
                    self.lines.append(raw.decode())
        except TimeoutError:
            pass

    def delivered(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith("delivered ")]


@asynccontextmanager
async def replica(settings: Settings, *arguments: str) -> AsyncIterator[Replica]:
    assert settings.database_url is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.core.jobs.outbox_process",
        *arguments,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": settings.database_url, "ENVIRONMENT": "test"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield Replica(process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_two_processes_share_the_work_each_message_once(
    postgres_url: str, migrated: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with (
        replica(migrated, "--poll", "0.5") as first,
        replica(migrated, "--poll", "0.5") as second,
    ):
        await first.wait_for(LISTENING)
        await second.wait_for(LISTENING)
        await commit_messages(sessionmaker, *({"n": n} for n in range(200)))
        async with asyncio.timeout(60):
            while len(first.delivered()) + len(second.delivered()) < 200:
                await asyncio.gather(first.read_for(0.2), second.read_for(0.2))
        # Anything delivered twice would show up now.
        await asyncio.gather(first.read_for(1.0), second.read_for(1.0))

    assert sorted(first.delivered() + second.delivered()) == list(range(200))
    assert first.delivered(), "the work was shared"
    assert second.delivered(), "the work was shared"
    messages = await stored(sessionmaker)
    assert {(m.status, m.attempts) for m in messages} == {(OutboxStatus.DELIVERED, 1)}


async def test_a_commit_in_one_process_starts_in_another_within_a_second(
    postgres_url: str, migrated: Settings, client: httpx.AsyncClient
) -> None:
    # An hour between polls: only the notification can explain a prompt start.
    async with replica(migrated, "--poll", "3600") as other:
        await other.wait_for(LISTENING)
        # The request's commit announces the welcome email to every dispatcher.
        started = time.monotonic()
        account = await register(client)
        await other.wait_for(f"email {account.email}", seconds=5)
        assert time.monotonic() - started < 1.0


async def test_an_order_placed_in_one_process_wakes_the_dispatcher_of_another(
    postgres_url: str, migrated: Settings, client: httpx.AsyncClient, resources: Resources
) -> None:
    # An hour between polls: only the notification, sent once the order's one call has
    # committed, can explain the delivery.
    async with replica(migrated, "--poll", "3600") as other:
        await other.wait_for(LISTENING)
        buyer = await user(client)
        item = await create_item(resources, buyer.id)
        placed = await place(client, buyer, order_body((item, 1)))
        assert placed.status_code == 201, placed.text
        await other.wait_for(f"order-email {buyer.email} {placed.json()['id']}", seconds=10)


async def test_a_message_claimed_by_a_killed_process_is_delivered_once_by_the_next(
    postgres_url: str, migrated: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with replica(migrated, "--mode", "hang", "--enqueue", "1", "--lease", "2") as doomed:
        await doomed.wait_for("committed")
        await doomed.wait_for("claimed 0")
        doomed.process.send_signal(signal.SIGKILL)
        await doomed.process.wait()
    [message] = await stored(sessionmaker)
    assert message.status is OutboxStatus.PENDING
    assert message.attempts == 1

    async with replica(migrated, "--poll", "0.2") as survivor:
        await survivor.wait_for("delivered 0 2", seconds=15)
        await survivor.read_for(1.5)
    assert survivor.delivered() == [0]
    [message] = await stored(sessionmaker)
    assert (message.status, message.attempts) == (OutboxStatus.DELIVERED, 2)


async def listener_pid(sessionmaker: async_sessionmaker[AsyncSession]) -> int | None:
    """The backend of the (one) LISTEN connection, if it is connected."""
    async with sessionmaker() as session:
        pid: int | None = await session.scalar(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION_NAME},
        )
    return pid


async def listener_connected(
    sessionmaker: async_sessionmaker[AsyncSession], *, other_than: int | None
) -> bool:
    pid = await listener_pid(sessionmaker)
    return pid is not None and pid != other_than


async def test_the_listener_reconnects_after_losing_its_connection(
    postgres_url: str, resources: Resources, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    recorder = Recorder()
    outbox = dispatcher(sessionmaker, recorder, listen_dsn=driver_dsn(postgres_url))
    outbox.start()
    try:
        await eventually(lambda: listener_connected(sessionmaker, other_than=None))
        pid = await listener_pid(sessionmaker)
        async with sessionmaker() as session:
            # What a database restart does to every connection.
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await eventually(lambda: listener_connected(sessionmaker, other_than=pid), seconds=15)
        await commit_messages(sessionmaker, {"n": 1})
        # Another process's commit: only the notification reaches this dispatcher.
        await resources.outbox.announce()

        async def delivered() -> bool:
            return bool(recorder.deliveries)

        await eventually(delivered, seconds=5)
    finally:
        await outbox.stop()
