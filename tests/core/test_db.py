"""`after_commit` callbacks run once the request's transaction has committed, and only then."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db import after_commit
from app.core.deps import SessionDep
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
