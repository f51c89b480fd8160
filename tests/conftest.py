"""Test set-up: one migrated database and one running app per session, clean state per test.

The backends come from the environment so the same tests run everywhere:
`TEST_DATABASE_URL` (PostgreSQL; unset means a temporary SQLite file) and `TEST_REDIS_URL`
(unset means in-process substitutes). `TEST_VIA_NGINX=1` sends every test client's requests
over real HTTP through nginx to uvicorn serving the same app (tests/transport.py); unset,
they call the app in process. Tests go through a real engine rather than one
wrapped transaction, because concurrency, per-task sessions and the lean read paths must
behave exactly as they do in production; isolation comes from emptying every table first.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import delete, make_url, text

from app.core.config import Environment, Settings
from app.core.resources import Resources
from app.domains.orders.prices import price_hints
from app.main import create_app
from app.models import Base
from support.processes import Unavailable
from tests.factories.mail import Inbox
from tests.migrations import upgrade_to_head
from tests.smtp import SmtpServer, smtp_server
from tests.transport import NGINX_NETWORK, VIA_NGINX, NginxClient, require_nginx, shared_front

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
# A streaming replica of TEST_DATABASE_URL's server (scripts/with_replica.py starts a pair):
# every app the tests build on that server then reads from it as production would.
TEST_DATABASE_READ_URL = os.environ.get("TEST_DATABASE_READ_URL") or None
# Tests that start servers of their own (tests/faults, tests/stack,
# tests/core/http/test_server.py) or fuzz the whole contract take a while and do not depend on
# the backend under test: they run once, with the PostgreSQL tests, rather than in every pass
# of the suite.
RUNS_WITH_POSTGRES = pytest.mark.skipif(
    TEST_DATABASE_URL is None,
    reason="runs with the PostgreSQL tests: set TEST_DATABASE_URL=postgresql+asyncpg://...",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: four workers on the embedded defaults, where each has its own SQLite file
    and in-process substitutes; one process otherwise, since every test empties the shared
    database and Redis. The tests wait on sockets and subprocesses more than they compute, so
    four keep two cores busy."""
    return 4 if TEST_DATABASE_URL is None and TEST_REDIS_URL is None else 0


def pytest_configure(config: pytest.Config) -> None:
    if VIA_NGINX:
        try:
            require_nginx()
        except Unavailable as missing:
            raise pytest.UsageError(f"TEST_VIA_NGINX=1 {missing}") from None


def replica_of(database_url: str | None) -> str | None:
    """The same database on TEST_DATABASE_READ_URL's replica, when `database_url` is on the
    primary it replicates: a replica holds every database of its primary."""
    if TEST_DATABASE_READ_URL is None or database_url is None or TEST_DATABASE_URL is None:
        return None
    primary, wanted = make_url(TEST_DATABASE_URL), make_url(database_url)
    if (wanted.host, wanted.port) != (primary.host, primary.port):
        return None
    replica = make_url(TEST_DATABASE_READ_URL).set(database=wanted.database)
    return replica.render_as_string(hide_password=False)


def make_settings(database_url: str | None, sqlite_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": Environment.TEST,
        "database_url": database_url,
        "database_read_url": replica_of(database_url),
        "sqlite_path": sqlite_path,
        "redis_url": TEST_REDIS_URL,
        "docs_enabled": True,
        "log_format": "text",
        "log_level": "WARNING",
        # Cheap hashing keeps the suite fast; production cost is a setting like any other.
        "password_hash_memory_kib": 1024,
        "password_hash_iterations": 1,
        "password_hash_bcrypt_rounds": 4,
        # Tests drive the outbox with run_once(), so no background loop races them for rows.
        "outbox_enabled": False,
        # Every test client shares one address; the limits' own tests set the real ones.
        "rate_limit_default": "100000/minute",
        "rate_limit_register": "100000/hour",
        "rate_limit_login": "100000/minute",
        "rate_limit_orders": "100000/minute",
        "rate_limit_password_reset": "100000/hour",
        "rate_limit_verify_email": "100000/hour",
        "rate_limit_mfa": "100000/minute",
        "rate_limit_export": "100000/hour",
    }
    values.update(overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    if not VIA_NGINX:
        return settings
    # nginx is then every request's peer, and its X-Forwarded-For names the client.
    proxies = (NGINX_NETWORK, *settings.trusted_proxies)
    return settings.model_copy(update={"trusted_proxies": proxies})


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(TEST_DATABASE_URL, tmp_path_factory.mktemp("db") / "test.db")


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> Settings:
    upgrade_to_head(settings)
    return settings


@pytest.fixture(scope="session")
async def app(migrated: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(migrated)
    async with application.router.lifespan_context(application), shared_front(application):
        yield application


@pytest.fixture(scope="session")
def resources(app: FastAPI) -> Resources:
    resources: Resources = app.state.resources
    return resources


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Empty tables, Redis and the cache before each test that uses the shared app.

    Ids restart with the tables, so an in-process cache entry from an earlier test would
    describe another row: the app's cache forgets what it holds in process too, and so do
    the orders' price hints.
    """
    if "app" not in request.fixturenames:
        yield
        return
    resources: Resources = request.getfixturevalue("resources")
    async with resources.engine.begin() as connection:
        tables = Base.metadata.sorted_tables
        if connection.dialect.name == "postgresql" and tables:
            names = ", ".join(table.name for table in tables)
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                await connection.execute(delete(table))
    if resources.redis is not None:
        await resources.redis.flushdb()
    resources.cache.forget_local()
    price_hints(resources.engine).clear()
    yield


def asgi_client(
    application: FastAPI, peer: str = "127.0.0.1", *, host: str = "testserver"
) -> httpx.AsyncClient:
    """A client of the app calling from `peer` and naming `host` as the server.

    `peer` is a 127.0.0.0/8 address so that a socket can be bound to it through nginx; in
    process it is the ASGI client address, with a port that means nothing to the app.
    """
    if VIA_NGINX:
        return NginxClient(application, peer, host)
    # raise_app_exceptions=False: the client sees what a real client sees on a crash.
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False, client=(peer, 123))
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


@asynccontextmanager
async def running(application: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app built in a test, with its lifespan running."""
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        yield c


def variant(settings: Settings, **overrides: object) -> Settings:
    """The test settings with some values changed, validated like real configuration."""
    return make_settings(settings.database_url, settings.sqlite_path, **overrides)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A separately configured app, started and stopped around the block."""
    async with running(create_app(settings)) as http:
        yield http


@pytest.fixture
async def empty_redis() -> None:
    """Empties the test Redis, when there is one, for tests that build their own apps."""
    if TEST_REDIS_URL is not None:
        client = Redis.from_url(TEST_REDIS_URL)
        try:
            await client.flushdb()
        finally:
            await client.aclose()


@pytest.fixture
def postgres_url() -> str:
    if TEST_DATABASE_URL is None:
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql+asyncpg://...")
    return TEST_DATABASE_URL


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    client = Redis.from_url(TEST_REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with smtp_server(username="mailer", password="mail-secret") as server:
        yield server


@pytest.fixture
def inbox(resources: Resources, smtp: SmtpServer) -> Inbox:
    """The shared app's outbox, delivered on demand to the SMTP server above."""
    return Inbox(resources, smtp)
