import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.core.errors import Conflict, error_responses
from app.main import create_app
from tests.conftest import asgi_client
from tests.problems import assert_problem


class OutOfWidgets(Conflict):
    type = "urn:problem-type:out-of-widgets"
    title = "Out of widgets"


class Widget(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(ge=0)


@pytest.fixture(scope="module")
async def probe_client(migrated: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with routes that fail in each way a real route can."""
    application: FastAPI = create_app(migrated)

    @application.post("/widgets", responses=error_responses(OutOfWidgets))
    async def create_widget(widget: Widget) -> Widget:
        if widget.count > 10:
            raise OutOfWidgets(f"Only 10 widgets left, {widget.count} asked.")
        return widget

    @application.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret connection string postgresql://admin:hunter2@db/prod")

    async with application.router.lifespan_context(application), asgi_client(application) as c:
        yield c


async def test_unknown_path_is_a_404_problem(probe_client: httpx.AsyncClient) -> None:
    body = assert_problem(await probe_client.get("/no/such/thing"), 404)
    assert body["instance"] == "/no/such/thing"
    assert body["title"] == "Not Found"


async def test_wrong_method_is_a_405_problem_with_allow(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.delete("/widgets")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


async def test_invalid_body_is_a_422_problem_listing_each_error(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post("/widgets", json={"name": "", "count": -1})
    body = assert_problem(response, 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {tuple(error["loc"]) for error in errors} == {("body", "name"), ("body", "count")}
    assert all(error.keys() == {"loc", "msg", "type"} for error in errors)


async def test_malformed_json_is_a_422_problem(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/widgets", content=b'{"name": "x", "count": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_domain_error_renders_its_own_status_and_type(
    probe_client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await probe_client.post("/widgets", json={"name": "a", "count": 11}), 409)
    assert body["type"] == "urn:problem-type:out-of-widgets"
    assert body["title"] == "Out of widgets"
    assert body["detail"] == "Only 10 widgets left, 11 asked."


async def test_crash_is_a_500_problem_that_reveals_nothing(
    probe_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await probe_client.get("/crash", headers={"X-Request-ID": "crash-1"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "crash-1"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    logged = [record for record in caplog.records if record.exc_info]
    assert logged, "the crash must be logged with its traceback"
    assert "hunter2" in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_declared_domain_errors_appear_in_openapi(probe_client: httpx.AsyncClient) -> None:
    schema = (await probe_client.get("/openapi.json")).json()
    responses = schema["paths"]["/widgets"]["post"]["responses"]
    assert "application/problem+json" in responses["409"]["content"]


def _sqlite_error(message: str) -> Exception:
    return OperationalError("UPDATE items ...", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        # Another writer holds SQLite's lock: a retryable condition, not a crash.
        (_sqlite_error("database is locked"), 503),
        (_sqlite_error("disk I/O error"), 500),
        # A connection the server ended mid-operation (a restart), raised by asyncpg itself on
        # the paths that skip SQLAlchemy: the driver's protocol is stuck.
        (asyncpg.InternalClientError("cannot switch to state 12; another operation (2)"), 503),
        (asyncpg.InternalClientError("unexpected exchange"), 500),
    ],
    ids=["sqlite-locked", "sqlite-io", "driver-connection-lost", "driver-bug"],
)
async def test_an_unavailable_database_is_a_retryable_503_and_a_bug_a_500(
    migrated: Settings, error: Exception, status: int
) -> None:
    application: FastAPI = create_app(migrated)

    @application.post("/write")
    async def write() -> None:
        raise error

    async with application.router.lifespan_context(application), asgi_client(application) as c:
        response = await c.post("/write")
    body = assert_problem(response, status)
    # The driver's own words never reach the client.
    assert str(getattr(error, "orig", error)) not in str(body)
    assert ("retry-after" in response.headers) is (status == 503)
