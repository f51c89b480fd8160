"""Engines, session factories, the hot paths' reads and the one-call writes, one shape per
backend: SQLite as embedded, PostgreSQL bounded against a failing server (app.core.db.guard)."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.config import Settings
from app.core.db.calls import Calls, DriverCalls, EngineCalls
from app.core.db.guard import Guard, gated_pool, guard_engine
from app.core.db.reads import DriverReads, EngineReads, Reads
from app.core.db.replicas import Replica, Replicas, watching
from app.core.tasks import stop


def _configure_sqlite(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers proceed during a write; the busy timeout turns lock contention
    # between concurrent requests into a short wait instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine for `settings`, guarded against a failing server where it has one."""
    return _create_engine(settings)[0]


def _create_engine(settings: Settings) -> tuple[AsyncEngine, Guard | None]:
    if settings.uses_sqlite:
        if settings.database_url is None:
            settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(settings.sqlalchemy_url, echo=settings.db_echo)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine, None
    url = make_url(settings.sqlalchemy_url)
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.db_command_timeout,
    }
    if settings.db_pgbouncer:
        # In transaction mode consecutive transactions of one client connection run on
        # different server connections, so a statement prepared on one is unknown (or, by
        # name, another's) on the next: no statement caches, and unique names for the
        # statements asyncpg still prepares for each query.
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        connect_args |= {
            "statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
    guard = Guard(settings.db_connect_timeout)
    engine = create_async_engine(
        url,
        echo=settings.db_echo,
        poolclass=gated_pool(guard.gate),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # A failed connection attempt frees its pool slot without waking the requests queued
        # for one, so while the database is down they wait out the whole pool timeout: capped
        # at the connect timeout, they are refused as soon as those that reached the server.
        # No request waits for a connection longer than the queue timeout either.
        pool_timeout=connection_wait(settings),
        pool_recycle=settings.db_pool_recycle,
        # Bounds on every wait for the server, so an unreachable or silent database is
        # refused within seconds instead of holding requests until the client gives up.
        connect_args=connect_args,
    )
    # In place of pool_pre_ping: the same check on checkout, bounded by the connect timeout.
    guard_engine(engine, guard)
    return engine, guard


def connection_wait(settings: Settings) -> float:
    """The longest a request waits for a pooled connection."""
    return min(
        settings.db_pool_timeout,
        settings.db_connect_timeout,
        settings.request_queue_timeout_ms / 1000,
    )


def driver_dsn(database_url: str) -> str:
    """The plain libpq DSN asyncpg connects with, from SQLAlchemy's URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


@dataclass(frozen=True, slots=True)
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    reads: Reads
    # Writes that are one call at the driver's cost (app.core.db.calls); None on SQLite.
    calls: Calls | None
    # Where the reads that a replica may serve go (app.core.db.replicas).
    replicas: Replicas


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The engine, its sessions, the hot paths' reads and the one-call writes, with the
    heartbeat that watches the server while they are open (app.core.db.guard)."""
    engine, guard = _create_engine(settings)
    reads: Reads = EngineReads(read_engine(engine, settings))
    calls: Calls | None = None
    heartbeat: asyncio.Task[None] | None = None
    if guard is not None:
        dsn = driver_dsn(settings.sqlalchemy_url)
        heartbeat = asyncio.create_task(guard.heartbeat(dsn), name="database heartbeat")
        calls = EngineCalls(engine)
        if not settings.db_pgbouncer:
            calls = await DriverCalls.open(
                dsn,
                size=settings.db_call_pool_size,
                guard=guard,
                wait=connection_wait(settings),
                command_timeout=settings.db_command_timeout,
            )
            reads = await DriverReads.open(
                dsn,
                size=settings.db_read_pool_size,
                gate=guard.gate,
                wait=connection_wait(settings),
                command_timeout=settings.db_command_timeout,
            )
            if settings.db_echo:
                reads.listeners.append(_echo)
        if settings.db_echo:
            calls.listeners.append(_echo)
    sessionmaker = create_sessionmaker(engine)
    replicas = [
        await _open_replica(settings, index, url)
        for index, url in enumerate(settings.read_replica_urls)
    ]
    router = Replicas(
        reads,
        sessionmaker,
        replicas,
        max_lag=settings.read_replica_max_lag_seconds,
        timeout=settings.db_connect_timeout,
    )
    try:
        async with watching(router):
            yield Database(engine, sessionmaker, reads, calls, router)
    finally:
        for replica in replicas:
            await _close_replica(replica)
        if heartbeat is not None:
            await stop(heartbeat)
        if isinstance(reads, DriverReads):
            await reads.close()
        if isinstance(calls, DriverCalls):
            await calls.close()
        await engine.dispose()


async def _open_replica(settings: Settings, index: int, url: str) -> Replica:
    """A replica's engine and reads, bounded as the primary's are; nothing connects yet, so a
    replica down at start-up is only skipped until it answers."""
    replica_settings = settings.model_copy(update={"database_url": url})
    engine, guard = _create_engine(replica_settings)
    dsn = driver_dsn(url)
    reads: Reads = EngineReads(read_engine(engine, replica_settings))
    if guard is not None and not settings.db_pgbouncer:
        reads = await DriverReads.open(
            dsn,
            size=settings.db_read_pool_size,
            gate=guard.gate,
            wait=connection_wait(settings),
            command_timeout=settings.db_command_timeout,
        )
    return Replica(str(index), dsn, engine, create_sessionmaker(engine), reads, guard)


async def _close_replica(replica: Replica) -> None:
    if isinstance(replica.reads, DriverReads):
        await replica.reads.close()
    await replica.engine.dispose()


def read_engine(engine: AsyncEngine, settings: Settings) -> AsyncEngine:
    """The engine for single-statement reads: the same pool in autocommit, so a read sends
    no BEGIN and ROLLBACK around its statement.

    Not behind PgBouncer in transaction mode, where a statement outside a transaction may be
    prepared on one server connection and run on another: there, reads keep a transaction.
    """
    if settings.db_pgbouncer:
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after commit so responses can be rendered from them.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def _echo(sql: str) -> None:
    # Where DB_ECHO has SQLAlchemy log the engine's statements.
    logging.getLogger("sqlalchemy.engine.Engine").info(sql)
