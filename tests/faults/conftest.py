"""Fixtures for fault tests: private servers, a migrated database each, the service under gunicorn.

PostgreSQL and Redis are started once for the package and brought back to running before each
test; a test may stop, freeze or restart them. Each test gets a database of its own, copied
from one migrated with Alembic, and starts the service against it with the settings it needs.
"""

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from support.processes import Unavailable
from support.servers import (
    OUTAGE_SETTINGS,
    Gunicorn,
    PostgresServer,
    RedisServer,
    migrate,
    wait_until_ready,
)

TEMPLATE = "faults_template"
_databases = itertools.count(1)


@pytest.fixture(scope="package")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except Unavailable as reason:
        pytest.skip(str(reason))
    try:
        server.start()
        migrate(server.create_database(TEMPLATE))
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="package")
def redis_server_process() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except Unavailable as reason:
        pytest.skip(str(reason))
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresServer:
    """The package's PostgreSQL, running and answering whatever the last test did to it."""
    if postgres_server.running:
        postgres_server.resume()
    else:
        postgres_server.start()
    return postgres_server


@pytest.fixture
def redis_server(redis_server_process: RedisServer) -> RedisServer:
    if redis_server_process.running:
        redis_server_process.resume()
    else:
        redis_server_process.start()
    return redis_server_process


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A fresh, migrated database for this test alone."""
    name = f"faults_{next(_databases)}"
    postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return postgres.url(name)


Service = Callable[..., AbstractAsyncContextManager[tuple[Gunicorn, httpx.AsyncClient]]]


@pytest.fixture
def service(database_url: str) -> Service:
    """Starts the service under gunicorn: `async with service(WEB_CONCURRENCY=2) as (app, http)`."""

    @asynccontextmanager
    async def start(
        workers: int = 1, **settings: str
    ) -> AsyncIterator[tuple[Gunicorn, httpx.AsyncClient]]:
        environment = OUTAGE_SETTINGS | {"DATABASE_URL": database_url} | settings
        app = Gunicorn(environment, workers=workers)
        app.start()
        try:
            async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as http:
                await wait_until_ready(http)
                yield app, http
        finally:
            if app.running:
                app.stop()
            if app.popen is not None and app.popen.returncode not in (0, None):
                print(app.output()[-5000:])
            app.destroy()

    return start
