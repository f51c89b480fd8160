"""Writes at the driver's cost: one statement (a database function's call, typically) run by
asyncpg itself, without a session, a unit of work or SQLAlchemy's cursor and result
machinery. For the few writes that are one call and must be cheap (placing an order).

On PostgreSQL the statement runs on a small pool of the driver's own (`DriverCalls`), in
autocommit (a function call is a transaction of its own) and prepared once per connection:
taking a connection from it costs a fraction of a checkout from the engine's pool, which is
most of what such a write costs the service. It is bounded as the engine is
(app.core.db.guard): no connection is handed out while the gate is closed, waiting for one
lasts at most the connect timeout (a pool with none free is an overloaded worker, 503), and
the connections in use are among those the heartbeat cuts off when the server falls silent.
A statement that ran past the command timeout, or whose request was cancelled, is cancelled
on the server before the caller hears of it, so it never commits behind a 503.

Behind PgBouncer in transaction mode a statement and its preparation must stay on one server
connection, so there the statement runs inside BEGIN ... COMMIT on a connection of the
engine's pool instead (`EngineCalls`). The embedded SQLite default has no driver worth going
around: it has no calls at all.
"""

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db.drivers import checkout, open_pool
from app.core.db.guard import Guard

# A row as the driver returns it, read by column name.
Record = Mapping[str, Any]

# Server errors that end the session: the server is going away or cut the connection.
_LINK_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


class Calls(Protocol):
    # Called with each statement before it runs, as the engine's cursor events are (DB_ECHO
    # logs them; the query-count tests count them).
    listeners: list[Callable[[str], None]]

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        """The first row `sql` returns with `args`, or None."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        """Every row `sql` returns with `args`."""
        ...


class _Statements:
    """`fetchrow` and `fetch` over whatever lends a driver connection."""

    listeners: list[Callable[[str], None]]

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        async with self._driver(sql) as driver:
            row: Record | None = await driver.fetchrow(sql, *args)
            return row

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        async with self._driver(sql) as driver:
            rows: list[Record] = await driver.fetch(sql, *args)
            return rows

    def _driver(self, sql: str) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError


class DriverCalls(_Statements):
    """Calls on asyncpg's own pool."""

    def __init__(self, pool: "asyncpg.Pool[asyncpg.Record]", guard: Guard, wait: float) -> None:
        self.pool = pool
        self.guard = guard
        self.wait = wait
        self.listeners = []

    @classmethod
    async def open(
        cls, dsn: str, *, size: int, guard: Guard, wait: float, command_timeout: float
    ) -> "DriverCalls":
        pool = await open_pool(dsn, size=size, wait=wait, command_timeout=command_timeout)
        return cls(pool, guard, wait)

    @contextlib.asynccontextmanager
    async def _driver(self, sql: str) -> AsyncIterator[Any]:
        for listener in self.listeners:
            listener(sql)
        async with checkout(self.pool, self.guard.gate, self.wait) as driver:
            self.guard.held.add(driver)
            try:
                yield driver
            finally:
                self.guard.held.discard(driver)

    async def close(self) -> None:
        await self.pool.close()


class EngineCalls(_Statements):
    """Calls on connections of the engine's pool, each in a transaction: behind PgBouncer."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.listeners = []

    @contextlib.asynccontextmanager
    async def _driver(self, sql: str) -> AsyncIterator[Any]:
        for listener in self.listeners:
            listener(sql)
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            try:
                async with driver.transaction():
                    yield driver
            except asyncpg.PostgresError as error:
                if isinstance(error, _LINK_BROKEN):
                    await connection.invalidate()
                raise
            except BaseException:
                await connection.invalidate()
                raise
