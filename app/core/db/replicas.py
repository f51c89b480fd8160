"""Reads from PostgreSQL streaming replicas that are never older than what was answered.

`DATABASE_READ_URL` names one or more hot standbys. A read that may go to one asks for it
with the position of the write it must see (`since`, a WAL position in bytes): it is served
by a replica that has replayed at least that far, and by the primary when none has. Where
`since` comes from is the caller's business: the cache keeps one per namespace, raised after
every commit that changes it (app.core.cache), so a read after a write's answer, on any
worker of any replica, asks for a position at or past that write's commit.

Every worker watches its replicas in the background, never on a request's path: every
POLL_SECONDS it asks each for the position it has replayed, and the primary for the position
it has written. A replica's lag is how long ago the primary had written no further than the
replica has now replayed, so it grows while the replica is stopped, paused or cut off, and an
idle primary does not make a caught-up replica look behind. A replica that does not answer
within the connect timeout, that is not in recovery, or that lags more than
READ_REPLICA_MAX_LAG_SECONDS is skipped until it answers and catches up again; a read that
fails on a replica (it went away since the last look) is marked down and served by the
primary, so a failing replica costs a read at most the connect timeout, never an error.
"""

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import ColumnClause, Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.db.errors import classify
from app.core.db.guard import Guard
from app.core.db.reads import Reads, Row
from app.core.observability.metrics import DB_REPLICA_LAG, DB_REPLICA_UP
from app.core.tasks import raise_if_cancelled, stop

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How often each worker asks its replicas how far they have replayed.
POLL_SECONDS = 0.1
# A position no replica reaches: what to ask for when the one to see is unknown.
UNKNOWN = 2**63 - 1
# Positions as byte offsets, so they compare as integers in Python.
_WAL_WRITTEN: ColumnClause[int] = literal_column(
    "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
)
# The same question asked after a commit and by the watcher, under two names, so that what
# a request sends can be told apart from the watcher's polls.
_WRITTEN: Select[tuple[int]] = select(_WAL_WRITTEN.label("lsn"))
WATCHER_LABEL = "watched_lsn"
_WATCHED: Select[tuple[int]] = select(_WAL_WRITTEN.label(WATCHER_LABEL))
_REPLAYED = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"


def replica_failed(error: BaseException) -> bool:
    """Whether `error` says the replica could not serve the read, rather than that the read
    is wrong: unreachable, silent, or cancelled by replay (a conflict with recovery)."""
    if classify(error) is not None:
        return True
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, asyncpg.PostgresError):
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False


@dataclass(eq=False)
class Replica:
    """One standby: its pools, and what the last look at it found."""

    # Its place in DATABASE_READ_URL: metrics and readiness name it so, never by its URL,
    # which may hold a password.
    name: str
    dsn: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    reads: Reads
    guard: Guard | None
    replayed: int = -1
    lag: float = math.inf
    up: bool = False
    error: str | None = "not looked at yet"
    # (when, how far the primary had written then), newest last.
    _written: deque[tuple[float, int]] = field(default_factory=deque)


class _ReplicaReads:
    """`Reads` on a replica, served by the primary when the replica fails."""

    def __init__(self, replicas: "Replicas", replica: Replica) -> None:
        self.replicas = replicas
        self.replica = replica

    async def one(self, statement: Select[*tuple[Any, ...]], **params: Any) -> Row | None:
        try:
            return await self.replica.reads.one(statement, **params)
        except Exception as error:
            if not replica_failed(error):
                raise
            self.replicas.failed(self.replica, error)
        return await self.replicas.primary_reads.one(statement, **params)


class Replicas:
    """Where a read that needs nothing newer than `since` goes (module docstring)."""

    def __init__(
        self,
        primary_reads: Reads,
        primary_sessionmaker: async_sessionmaker[AsyncSession],
        replicas: list[Replica] | None = None,
        *,
        max_lag: float = 5.0,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary_reads = primary_reads
        self.primary_sessionmaker = primary_sessionmaker
        self.replicas = replicas or []
        self.max_lag = max_lag
        self.timeout = timeout
        self._clock = clock
        self._reads = {replica: _ReplicaReads(self, replica) for replica in self.replicas}
        self._turn = itertools.count()

    @property
    def enabled(self) -> bool:
        return bool(self.replicas)

    def usable(self, replica: Replica) -> bool:
        return replica.up and replica.lag <= self.max_lag

    def pick(self, since: int) -> Replica | None:
        """A replica that has replayed `since` and is within the lag allowed, taken in turn;
        None: the primary."""
        candidates = [r for r in self.replicas if self.usable(r) and r.replayed >= since]
        if not candidates:
            return None
        return candidates[next(self._turn) % len(candidates)]

    def reads(self, since: int) -> Reads:
        """Single-row reads that see every write up to `since`."""
        replica = self.pick(since) if self.replicas else None
        return self.primary_reads if replica is None else self._reads[replica]

    async def run(self, since: int, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work` on a short session that sees every write up to `since`; on the primary if
        the replica chosen fails under it."""
        replica = self.pick(since) if self.replicas else None
        if replica is not None:
            try:
                async with replica.sessionmaker() as session:
                    return await work(session)
            except Exception as error:
                if not replica_failed(error):
                    raise
                self.failed(replica, error)
        async with self.primary_sessionmaker() as session:
            return await work(session)

    async def position(self) -> int:
        """How far the primary has written now: read after a commit, at or past it. 0 when
        no replica is configured (nothing waits for one)."""
        return await self._position(_WRITTEN)

    async def _position(self, statement: Select[tuple[int]]) -> int:
        if not self.replicas:
            return 0
        row = await self.primary_reads.one(statement)
        return 0 if row is None else int(next(iter(row.values())))

    async def run_current(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work` on a session that sees every write committed before it began, whichever
        path wrote it: for the administrators' lists, which no fence covers. It costs one
        statement on the primary (its position), never the list's own queries."""
        return await self.run(await self.position(), work)

    def failed(self, replica: Replica, error: BaseException) -> None:
        """A read failed on `replica`: skip it until the next look finds it answering."""
        if replica.up:
            logger.warning(
                "read replica %s failed (%s); reading from the primary until it answers",
                replica.name,
                type(error).__name__,
            )
        replica.up = False
        replica.error = type(error).__name__
        DB_REPLICA_UP.labels(replica.name).set(0)

    async def watch(self) -> None:
        """Look at every replica every POLL_SECONDS until cancelled (module docstring)."""
        connections: dict[Replica, asyncpg.Connection | None] = dict.fromkeys(self.replicas)
        try:
            while True:
                written = await self._written()
                for replica in self.replicas:
                    connections[replica] = await self._look(replica, connections[replica], written)
                await asyncio.sleep(POLL_SECONDS)
        finally:
            for connection in connections.values():
                if connection is not None and not connection.is_closed():
                    connection.terminate()

    async def _written(self) -> int | None:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._position(_WATCHED)
        except Exception:
            # The primary's own outage is the guard's to report; lags wait for it.
            raise_if_cancelled()
            return None

    async def _look(
        self, replica: Replica, connection: "asyncpg.Connection | None", written: int | None
    ) -> "asyncpg.Connection | None":
        """One look at `replica`; the connection to look on next time (None: a new one)."""
        now = self._clock()
        samples = replica._written
        if written is not None:
            samples.append((now, written))
        # Kept for twice the lag allowed: further back, the replica is skipped either way.
        while len(samples) > 1 and now - samples[1][0] > 2 * self.max_lag:
            samples.popleft()
        try:
            if connection is None or connection.is_closed():
                connection = await asyncpg.connect(replica.dsn, timeout=self.timeout)
            replayed = await connection.fetchval(_REPLAYED, timeout=self.timeout)
        except BaseException as error:
            # Cancelled too (the app stops): a connection opened by this look is not yet in
            # the watcher's hands to close.
            if connection is not None:
                connection.terminate()
            if not isinstance(error, Exception):
                raise
            raise_if_cancelled()
            if isinstance(error, TimeoutError) and replica.guard is not None:
                # Silent: requests holding its connections fail now, not at their timeout.
                replica.guard.gate.silent()
                replica.guard.cut_off()
            self._down(replica, type(error).__name__)
            return None
        if replica.guard is not None:
            replica.guard.gate.answered()
        if replayed is None:
            self._down(replica, "not a replica (not in recovery)")
            return connection
        replica.replayed = int(replayed)
        replica.lag = self._lag(replica, now)
        if not replica.up:
            logger.warning("read replica %s answers; serving reads from it", replica.name)
        replica.up, replica.error = True, None
        DB_REPLICA_UP.labels(replica.name).set(1)
        DB_REPLICA_LAG.labels(replica.name).set(replica.lag)
        return connection

    def _lag(self, replica: Replica, now: float) -> float:
        """How long ago the primary had written no further than the replica has replayed."""
        samples = replica._written
        caught_up_at = None
        for when, written in reversed(samples):
            if written <= replica.replayed:
                caught_up_at = when
                break
        if caught_up_at is None:
            # Behind everything remembered: at least as old as the oldest look.
            return now - samples[0][0] if samples else math.inf
        if caught_up_at == samples[-1][0]:
            return 0.0
        # The first look it has not caught up with is when it fell behind.
        later = [when for when, _ in samples if when > caught_up_at]
        return now - later[0]

    def _down(self, replica: Replica, reason: str) -> None:
        if replica.up:
            logger.warning(
                "read replica %s is down (%s); reading from the primary", replica.name, reason
            )
        replica.up, replica.error = False, reason
        DB_REPLICA_UP.labels(replica.name).set(0)

    def health(self) -> dict[str, str | None]:
        """Each replica's name and why it is skipped (None: in use)."""
        report: dict[str, str | None] = {}
        for replica in self.replicas:
            if not replica.up:
                report[replica.name] = replica.error or "down"
            elif replica.lag > self.max_lag:
                report[replica.name] = f"{replica.lag:.1f}s behind the primary"
            else:
                report[replica.name] = None
        return report


@contextlib.asynccontextmanager
async def watching(replicas: Replicas) -> AsyncIterator[None]:
    """The background look at `replicas` while the block runs (nothing without any)."""
    if not replicas.enabled:
        yield
        return
    task = asyncio.create_task(replicas.watch(), name="read replicas")
    try:
        yield
    finally:
        await stop(task)
