"""One-call writes on the driver, under the engine's pool: their rows, their listeners, and a
connection that timed out never handed to the next caller."""

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.core.db.calls import DriverCalls
from app.core.db.engine import create_engine
from tests.conftest import make_settings


@pytest.fixture
async def calls(postgres_url: str, tmp_path: Path) -> AsyncIterator[DriverCalls]:
    settings = make_settings(
        postgres_url, tmp_path / "unused.db", db_pool_size=1, db_command_timeout=0.5
    )
    engine = create_engine(settings)
    try:
        yield DriverCalls(engine)
    finally:
        await engine.dispose()


async def test_rows_come_back_as_the_driver_reads_them(calls: DriverCalls) -> None:
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


async def backend(calls: DriverCalls) -> int:
    """The server process behind the pool's one connection."""
    row = await calls.fetchrow("SELECT pg_backend_pid() AS pid")
    assert row is not None
    pid: int = row["pid"]
    return pid


async def test_a_statement_the_server_refuses_keeps_its_connection(calls: DriverCalls) -> None:
    before = await backend(calls)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await calls.fetchrow("SELECT 1 / $1::int", 0)
    assert await backend(calls) == before


async def test_a_statement_past_the_command_timeout_loses_its_connection(
    calls: DriverCalls,
) -> None:
    before = await backend(calls)
    with pytest.raises(TimeoutError):
        await calls.fetchrow("SELECT pg_sleep(5)")
    # Whatever it was doing may still be under way: the next caller gets a new connection.
    assert await backend(calls) != before
