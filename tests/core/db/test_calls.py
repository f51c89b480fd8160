"""One-call writes on the driver, on its own pool or (behind PgBouncer) under the engine's:
their rows, their listeners, and a write that ran past the command timeout undone before
the caller is told it failed."""

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.core.db.calls import Calls, DriverCalls, EngineCalls
from app.core.db.engine import open_database
from tests.conftest import make_settings
from tests.waiting import eventually


@pytest.fixture(params=["own pool", "engine's pool"])
async def calls(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> AsyncIterator[Calls]:
    settings = make_settings(
        postgres_url,
        tmp_path / "unused.db",
        db_pool_size=1,
        db_max_overflow=0,
        db_call_pool_size=1,
        db_command_timeout=0.5,
    )
    async with open_database(settings) as database:
        assert isinstance(database.calls, DriverCalls)
        yield database.calls if request.param == "own pool" else EngineCalls(database.engine)


async def test_rows_come_back_as_the_driver_reads_them(calls: Calls) -> None:
    seen: list[str] = []
    calls.listeners.append(seen.append)
    row = await calls.fetchrow("SELECT $1::int + 1 AS n, $2::text AS s", 41, "x")
    assert row is not None
    assert (row["n"], row["s"]) == (42, "x")
    rows = await calls.fetch("SELECT generate_series(1, $1::int) AS n", 3)
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert seen == [
        "SELECT $1::int + 1 AS n, $2::text AS s",
        "SELECT generate_series(1, $1::int) AS n",
    ]


async def backend(calls: Calls) -> int:
    """The server process behind the pool's one connection."""
    row = await calls.fetchrow("SELECT pg_backend_pid() AS pid")
    assert row is not None
    pid: int = row["pid"]
    return pid


async def test_a_statement_the_server_refuses_keeps_its_connection(calls: Calls) -> None:
    before = await backend(calls)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await calls.fetchrow("SELECT 1 / $1::int", 0)
    assert await backend(calls) == before


@pytest.fixture
async def probe(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A row of a table of its own, and another client of the database holding its lock."""
    holder = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    await holder.execute("CREATE TABLE call_probe (id int PRIMARY KEY, n int NOT NULL)")
    await holder.execute("INSERT INTO call_probe VALUES (1, 0)")
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT n FROM call_probe WHERE id = 1 FOR UPDATE")
        yield holder
    finally:
        await holder.execute("ROLLBACK")
        await holder.execute("DROP TABLE call_probe")
        await holder.close()


async def test_a_write_past_the_command_timeout_is_undone_before_it_fails(
    calls: Calls, probe: asyncpg.Connection
) -> None:
    with pytest.raises(TimeoutError):
        await calls.fetchrow("UPDATE call_probe SET n = n + 1 WHERE id = 1 RETURNING n")
    # Had it been left running, it would take the row as soon as the holder lets go.
    await probe.execute("COMMIT")

    async def settled() -> bool:
        running = await probe.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE 'UPDATE call_probe%'"
        )
        return bool(running == 0)

    await eventually(settled)
    assert await probe.fetchval("SELECT n FROM call_probe WHERE id = 1") == 0
    await probe.execute("BEGIN")
