"""Single-row reads at the driver's cost: the hot paths' statements (the principal behind a
token, an item by id) without a session, a unit of work or SQLAlchemy's result machinery.

A repository writes its statement once, in SQLAlchemy Core, and reads it with `reads.one()`.
On PostgreSQL the statement is compiled once for asyncpg and run as a prepared statement on a
connection of a small pool of the driver's own: the read costs what the driver costs (about a
third of the same read through an `AsyncConnection`). On the embedded SQLite default it runs
on the engine like any other statement. The caller sees the same row mapping either way.

The pool is bounded like the engine's (app.core.db.guard): acquiring waits at most the
connect timeout (a pool with no free connection is an overloaded worker, not a failing
database), a statement at most the connect timeout too (these are single-row index reads;
one that takes longer means a server that does not answer), and a silence on the server
closes the gate the engine shares, so both refuse at once until the timeout has passed.
"""

from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy import Select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db.drivers import checkout, open_pool
from app.core.db.errors import DatabaseNotAnswering
from app.core.db.guard import SilenceGate

Row = Mapping[str, Any]


class Reads(Protocol):
    async def one(self, statement: Select[*tuple[Any, ...]], **params: Any) -> Row | None:
        """The first row of `statement` with its bound `params`, or None."""
        ...


class EngineReads:
    """`Reads` on an engine in autocommit: SQLite, and PostgreSQL behind PgBouncer."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def one(self, statement: Select[*tuple[Any, ...]], **params: Any) -> Row | None:
        async with self.engine.connect() as connection:
            result = await connection.execute(statement, params)
            return cast(Row | None, result.mappings().first())


class _Compiled:
    __slots__ = ("names", "sql")

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.names = list(compiled.positiontup or ())


_DIALECT = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]


class DriverReads:
    """`Reads` on asyncpg's own pool: PostgreSQL, where statements can stay prepared."""

    def __init__(self, pool: "asyncpg.Pool[asyncpg.Record]", gate: SilenceGate, wait: float):
        self.pool = pool
        self.gate = gate
        self.wait = wait
        self._compiled: dict[int, _Compiled] = {}
        # Called with each statement's SQL before it runs, as the engine's cursor events are
        # (DB_ECHO logs them; the query-count tests count them).
        self.listeners: list[Callable[[str], None]] = []

    @classmethod
    async def open(
        cls, dsn: str, *, size: int, gate: SilenceGate, wait: float, command_timeout: float
    ) -> "DriverReads":
        pool = await open_pool(dsn, size=size, wait=wait, command_timeout=command_timeout)
        return cls(pool, gate, wait)

    async def one(self, statement: Select[*tuple[Any, ...]], **params: Any) -> Row | None:
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            compiled = self._compiled[id(statement)] = _Compiled(statement)
        arguments = [params[name] for name in compiled.names]
        for listener in self.listeners:
            listener(compiled.sql)
        async with checkout(self.pool, self.gate, self.wait) as connection:
            try:
                row: Row | None = await connection.fetchrow(
                    compiled.sql, *arguments, timeout=self.wait
                )
            except TimeoutError as error:
                self.gate.silent()
                # A graceful close would wait on the silent server too.
                connection.terminate()
                raise DatabaseNotAnswering(f"no answer to a read within {self.wait:g}s") from error
        return row

    async def close(self) -> None:
        await self.pool.close()
