"""Writes at the driver's cost: one statement (a database function's call, typically) run by
asyncpg itself on a connection of the engine's pool, without a session, a unit of work or
SQLAlchemy's cursor and result machinery.

For the few writes that are one call and must be cheap (placing an order). The connection
is the engine's, so such writes share the one pool the deployment is sized for, and its
guard applies as to any other statement (app.core.db.guard): the gate, the ping of an idle
connection, the cut-off of what a silent server holds. The statement runs in autocommit, a
transaction of its own, prepared once per connection. Behind PgBouncer in transaction mode
a statement and its preparation must stay on one server connection, so there it runs
inside BEGIN ... COMMIT.

A connection whose statement timed out, or whose link broke, leaves the pool, as with the
engine's own statements: no later request inherits it.

PostgreSQL only; the embedded SQLite default has no driver worth going around.
"""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

# A row as the driver returns it, read by column name.
Record = Mapping[str, Any]


class DriverCalls:
    """Statements on asyncpg under connections of `engine`'s pool."""

    def __init__(self, engine: AsyncEngine, *, pgbouncer: bool = False) -> None:
        self.engine = engine
        self.pgbouncer = pgbouncer
        # Called with each statement before it runs, as the engine's cursor events are
        # (DB_ECHO logs them; the query-count tests count them).
        self.listeners: list[Callable[[str], None]] = []

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        """The first row `sql` returns with `args`, or None."""
        async with self._driver(sql) as driver:
            row: Record | None = await driver.fetchrow(sql, *args)
            return row

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        """Every row `sql` returns with `args`."""
        async with self._driver(sql) as driver:
            rows: list[Record] = await driver.fetch(sql, *args)
            return rows

    @asynccontextmanager
    async def _driver(self, sql: str) -> AsyncIterator["asyncpg.Connection[asyncpg.Record]"]:
        for listener in self.listeners:
            listener(sql)
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: asyncpg.Connection[asyncpg.Record] = raw.driver_connection
            try:
                if self.pgbouncer:
                    async with driver.transaction():
                        yield driver
                else:
                    yield driver
            except asyncpg.PostgresError as error:
                # The server refused the statement; the link is as good as before.
                if isinstance(error, _LINK_BROKEN):
                    await connection.invalidate()
                raise
            except BaseException:
                # A timeout, a broken link, a cancelled request: whatever the connection was
                # doing may still be under way, so it is not handed to anyone else.
                await connection.invalidate()
                raise


# Server errors that end the session: the server is going away or cut the connection.
_LINK_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
