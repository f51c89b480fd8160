"""`after_commit` callbacks run once the request's transaction has committed, and only then."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.core.config import Settings
from app.core.db.engine import create_engine
from app.core.db.transactions import after_commit
from app.core.deps import SessionDep
from app.core.resources import create_outbox
from app.main import create_app
from tests.conftest import running


class Refused(Exception):
    pass


@pytest.fixture
async def recorded(migrated: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    calls: list[str] = []
    application: FastAPI = create_app(migrated)

    @application.post("/writes", status_code=204)
    async def write(session: SessionDep, fail: bool = False, broken: bool = False) -> None:
        async def record() -> None:
            calls.append("in transaction" if session.in_transaction() else "committed")

        async def explode() -> None:
            raise RuntimeError("cache down")

        if broken:
            after_commit(session, explode)
        after_commit(session, record)
        await session.connection()  # begins the transaction the callback must wait for
        if fail:
            raise Refused

    async with running(application) as client:
        yield client, calls


async def test_callbacks_run_after_the_commit(
    recorded: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, calls = recorded
    assert (await client.post("/writes")).status_code == 204
    assert calls == ["committed"]


async def test_callbacks_do_not_run_when_the_request_fails(
    recorded: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, calls = recorded
    assert (await client.post("/writes", params={"fail": "true"})).status_code == 500
    assert calls == []


async def test_a_failing_callback_neither_stops_the_others_nor_fails_the_request(
    recorded: tuple[httpx.AsyncClient, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    client, calls = recorded
    assert (await client.post("/writes", params={"broken": "true"})).status_code == 204
    assert calls == ["committed"]
    assert "after-commit callback" in caplog.text


async def test_behind_pgbouncer_no_prepared_statement_is_cached_or_named_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://app@127.0.0.1:6432/app", db_pgbouncer=True
    )
    engine = create_engine(settings)
    connecting: dict[str, Any] = {}

    class Connecting(Exception):
        """Raised instead of connecting: the arguments are what is under test."""

    def connect(*_args: Any, **options: Any) -> None:
        connecting.update(options)
        raise Connecting

    monkeypatch.setattr(engine.sync_engine.dialect, "connect", connect)
    try:
        with pytest.raises(Connecting):
            await engine.connect()
        assert engine.url.query["prepared_statement_cache_size"] == "0"
        assert connecting["statement_cache_size"] == 0
        name = connecting["prepared_statement_name_func"]
        assert name() != name()
    finally:
        await engine.dispose()


async def test_the_job_log_listens_on_postgresql_itself_when_told() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://app@pgbouncer:6432/app",
        outbox_listen_url="postgresql+asyncpg://app@postgres:5432/app",
    )
    outbox = create_outbox(settings, async_sessionmaker(), lambda *_: None)
    # The dispatcher keeps the listener to itself; its address is what is under test.
    listener = outbox._listener
    assert listener is not None
    assert listener._dsn == "postgresql://app@postgres:5432/app"
