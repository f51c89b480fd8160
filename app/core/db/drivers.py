"""asyncpg's own pools, for the paths that skip SQLAlchemy (app.core.db.reads, calls): how
one is opened, and how a connection is taken from it and given back while the database may
be failing."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from app.core.db.errors import DatabaseNotAnswering, PoolExhausted
from app.core.db.guard import SilenceGate


async def open_pool(
    dsn: str, *, size: int, wait: float, command_timeout: float
) -> "asyncpg.Pool[asyncpg.Record]":
    return await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size,
        timeout=wait,
        command_timeout=command_timeout,
        # Each use is one statement in autocommit or one transaction of its own, leaving no
        # session state behind, and asyncpg's reset would cost every use a second round trip.
        reset=_keep,
    )


@contextlib.asynccontextmanager
async def checkout(
    pool: "asyncpg.Pool[asyncpg.Record]", gate: SilenceGate, wait: float
) -> AsyncIterator[Any]:
    """A connection of `pool` within `wait` seconds: an exhausted pool is overloaded, a new
    connection that does not open in time a silent server (the gate closes)."""
    gate.check()
    full = pool.get_size() >= pool.get_max_size()
    try:
        connection = await pool.acquire(timeout=wait)
    except TimeoutError as error:
        if full:
            raise PoolExhausted("no database connection came free in time") from error
        gate.silent()
        raise DatabaseNotAnswering(f"no connection within {wait:g}s") from error
    try:
        yield connection
    except asyncpg.InternalClientError:
        # Its protocol is stuck mid-operation (the server ended it): never reused.
        connection.terminate()
        raise
    finally:
        # A statement that ran past the command timeout, or whose request was cancelled, is
        # being cancelled on the server: the release waits for that, so it is undone before
        # anyone is told it failed. A connection that broke, or does not settle, is replaced.
        await pool.release(connection)


async def _keep(connection: Any) -> None:
    return None
