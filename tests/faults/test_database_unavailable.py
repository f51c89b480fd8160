"""A database that refuses or never answers is a fast, retryable 503, never a 500 or a hang.

These run in process against fake servers (a closed port, a socket that never answers), so
they need no binaries; test_outages.py does the same to real servers.
"""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import exc

from app.core.db.errors import DatabaseNotAnswering, Unavailability, classify
from app.core.resources import Resources
from app.main import create_app
from support.processes import free_port
from tests.conftest import RUNS_WITH_POSTGRES, asgi_client, make_settings

pytestmark = RUNS_WITH_POSTGRES

CONNECT_TIMEOUT = 0.5
# Whatever the outage, the answer comes within the connect timeout and this margin.
BOUND = CONNECT_TIMEOUT + 1.0


async def silent_server() -> tuple[asyncio.Server, list[asyncio.StreamWriter]]:
    """Accepts connections and never answers, as a frozen (SIGSTOPped) PostgreSQL does."""
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    return await asyncio.start_server(accept, "127.0.0.1", 0), accepted


@pytest.fixture(params=["refused", "silent"])
async def unavailable_database(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "refused":
        yield f"postgresql+asyncpg://app@127.0.0.1:{free_port()}/app"
        return
    server, accepted = await silent_server()
    port = server.sockets[0].getsockname()[1]
    yield f"postgresql+asyncpg://app@127.0.0.1:{port}/app"
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def api(unavailable_database: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        unavailable_database,
        tmp_path / "unused.db",
        redis_url=None,
        db_connect_timeout=CONNECT_TIMEOUT,
        health_check_timeout=1.0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        resources: Resources = application.state.resources
        c.headers["Authorization"] = "Bearer " + resources.tokens.issue(
            user_id=1, session_id="5" * 32, scopes=frozenset({"profile", "orders:write"})
        )
        yield c


async def timed(call: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await call  # type: ignore[misc]
    assert isinstance(response, httpx.Response)
    return response, time.perf_counter() - started


def assert_retryable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["detail"] == "The database is unavailable; retry shortly."
    assert elapsed < BOUND, f"answered after {elapsed:.2f}s"


async def test_reads_writes_and_authentication_are_503_within_the_connect_timeout(
    api: httpx.AsyncClient,
) -> None:
    requests = [
        api.get("/api/v1/posts", headers={"Authorization": ""}),
        api.get("/api/v1/items/1", headers={"Authorization": ""}),
        # The principal lookup runs on a plain connection of its own.
        api.get("/api/v1/users/me"),
        api.post(
            "/api/v1/users",
            json={"email": "ada@example.com", "full_name": "Ada", "password": "analytical-1"},
            headers={"Authorization": ""},
        ),
    ]
    for request in requests:
        assert_retryable(*await timed(request))


async def test_concurrent_requests_beyond_the_pool_are_all_answered_within_the_bound(
    api: httpx.AsyncClient,
) -> None:
    # More requests than the pool holds (10 + 10): those queued behind it must not each
    # wait a timeout of their own in turn.
    results = await asyncio.gather(*(timed(api.get("/api/v1/posts")) for _ in range(40)))
    for response, elapsed in results:
        assert_retryable(response, elapsed)


async def test_liveness_stays_200_and_readiness_is_503(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).status_code == 200
    ready, elapsed = await timed(api.get("/health/ready"))
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["status"] == "failed"
    assert elapsed < BOUND


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached"),
            Unavailability.OVERLOADED,
        ),
        (DatabaseNotAnswering("no answer to a ping"), Unavailability.DOWN),
        (
            exc.DBAPIError("SELECT 1", {}, Exception("closed"), connection_invalidated=True),
            Unavailability.DOWN,
        ),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), Unavailability.DOWN),
        (
            exc.InterfaceError("BEGIN", {}, asyncpg.InterfaceError("connection is closed")),
            Unavailability.DOWN,
        ),
        (
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
            None,
        ),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), Unavailability.DOWN),
        (
            asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            ),
            Unavailability.DOWN,
        ),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), Unavailability.DOWN),
        (
            exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked")),
            Unavailability.BUSY,
        ),
        (exc.IntegrityError("INSERT", {}, Exception("duplicate key")), None),
        (exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table")), None),
        (ConnectionRefusedError("raised by application code"), None),
        (TimeoutError("raised by application code"), None),
    ],
)
def test_classify_tells_an_unavailable_database_from_a_bug(
    error: Exception, expected: Unavailability | None
) -> None:
    assert classify(error) is expected


async def test_socket_errors_from_the_driver_mean_the_database_is_down() -> None:
    with pytest.raises(OSError, match="Connect call failed") as refused:
        await asyncpg.connect(host="127.0.0.1", port=free_port(), user="app", timeout=1)
    assert classify(refused.value) is Unavailability.DOWN

    server, accepted = await silent_server()
    port = server.sockets[0].getsockname()[1]
    with pytest.raises(TimeoutError) as silent:
        await asyncpg.connect(host="127.0.0.1", port=port, user="app", timeout=0.1)
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()
    assert classify(silent.value) is Unavailability.DOWN


def test_a_driver_error_wrapped_by_sqlalchemy_is_found_through_its_causes() -> None:
    cause = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    wrapper = exc.InterfaceError("SELECT 1", {}, Exception("adapted"))
    wrapper.__cause__ = cause
    assert classify(wrapper) is Unavailability.DOWN
