"""Wake-ups across replicas: a NOTIFY after the commits that enqueued, a LISTEN per dispatcher.

PostgreSQL only. The notification carries nothing: it only says "look now", and the claim
query decides what there is to do, so a lost or repeated notification costs at most a poll
interval or one empty claim. SQLite deployments are one host, woken in process.

The NOTIFY is sent after the commit, in a transaction of its own, never inside the
transaction that enqueued: PostgreSQL serialises the commits of every transaction that
notified, across the whole cluster and through their WAL flushes, so a NOTIFY per request
would make every enqueuing write commit one at a time. `Announcer` sends at most one per
`interval` for all the commits of a process meanwhile: the first at once, the next when the
interval has passed. A process that dies between a commit and its NOTIFY leaves the message
to the dispatchers' next poll; it is committed, so it is never lost.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.guard import connect_whole
from app.core.jobs.health import FailureWatch
from app.core.jobs.models import CHANNEL
from app.core.tasks import stop

logger = logging.getLogger(__package__)

APPLICATION_NAME = "outbox-listener"
_RECONNECT_MIN_SECONDS = 0.5
_RECONNECT_MAX_SECONDS = 30.0
_CONNECT_TIMEOUT_SECONDS = 10.0
# An idle connection whose peer vanished without closing it (a network partition) would
# otherwise look alive forever; a periodic query notices.
_HEALTH_CHECK_SECONDS = 30.0
# InternalClientError: the driver lost track of the connection's state (a server that cut it
# off while it was being set up); a new connection is the cure, as for the others.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


# Short enough that a wake-up is never noticeably late, long enough that a busy process
# sends a few NOTIFYs a second rather than one per request.
ANNOUNCE_INTERVAL_SECONDS = 0.05
# How long stopping waits for a NOTIFY still due.
_FLUSH_SECONDS = 1.0


async def notify(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Tell every listening dispatcher that committed messages are waiting."""
    async with sessionmaker() as session:
        await session.execute(text(f"NOTIFY {CHANNEL}"))
        await session.commit()


class Signal:
    """Tells any number of waiters that committed messages may be waiting: `ticket()` before
    a read, then `wait(ticket, ...)` after it, so a signal sent during the read is not missed.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def send(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def ticket(self) -> asyncio.Event:
        return self._event


class Announcer:
    """Coalesces the wake-ups a process owes the other dispatchers: `request()` after each
    commit that enqueued costs nothing, and at most one `send()` runs per `interval`."""

    def __init__(
        self,
        send: Callable[[], Awaitable[None]],
        *,
        interval: float = ANNOUNCE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._due = False
        self._last_sent = -interval
        self._task: asyncio.Task[None] | None = None
        # Polling delivers while NOTIFY fails, so a failure is logged once per outage.
        self._watch = FailureWatch(logger, "announcing outbox messages", level=logging.WARNING)

    def request(self) -> None:
        """Ask for a NOTIFY: sent now if none went out within the interval, else once it ends."""
        self._due = True
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-announcer")

    async def _run(self) -> None:
        try:
            while self._due:
                wait = self._last_sent + self._interval - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Commits from here on ask for the next one.
                self._due = False
                self._last_sent = self._clock()
                try:
                    await self._send()
                except Exception as error:
                    self._watch.failed(error, retry_in=self._interval)
                else:
                    self._watch.succeeded()
        finally:
            self._task = None

    async def close(self) -> None:
        """Send what is still due (within a second), then stop."""
        task = self._task
        if task is None:
            return
        _, pending = await asyncio.wait({task}, timeout=_FLUSH_SECONDS)
        if pending:
            await stop(task)


class Listener:
    """LISTENs on a dedicated connection outside the pool and calls `on_notify` for each
    notification; reconnects with backoff when the connection drops (a database restart).
    """

    def __init__(self, dsn: str, on_notify: Callable[[], None]) -> None:
        self._dsn = dsn
        self._on_notify = on_notify

    async def run(self) -> None:
        """Listen until cancelled."""
        delay = _RECONNECT_MIN_SECONDS
        # Polling still delivers meanwhile, so a lost listener is a warning, logged when it
        # is lost and when it is back, not at every attempt in between.
        watch = FailureWatch(logger, "listening for outbox notifications", level=logging.WARNING)
        while True:
            try:
                connection = await connect_whole(
                    self._dsn,
                    timeout=_CONNECT_TIMEOUT_SECONDS,
                    # Lets operators tell it apart in pg_stat_activity.
                    server_settings={"application_name": APPLICATION_NAME},
                )
            except _CONNECTION_ERRORS as error:
                watch.failed(error, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)
                continue
            watch.succeeded()
            delay = _RECONNECT_MIN_SECONDS
            try:
                await self._listen(connection)
            except _CONNECTION_ERRORS as error:
                logger.warning("outbox notification connection lost (%s); reconnecting", error)
            finally:
                if not connection.is_closed():
                    connection.terminate()

    async def _listen(self, connection: Any) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, lambda *_notification: self._on_notify())
        logger.info("outbox dispatcher listening on channel %s", CHANNEL)
        # Whatever was announced while nobody listened is already committed: look now.
        self._on_notify()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_HEALTH_CHECK_SECONDS):
                    await lost.wait()
            if lost.is_set() or connection.is_closed():
                logger.warning("outbox notification connection closed; reconnecting")
                return
            async with asyncio.timeout(_CONNECT_TIMEOUT_SECONDS):
                await connection.execute("SELECT 1")
