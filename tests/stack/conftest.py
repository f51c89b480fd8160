"""One stack for the package: it takes about fifteen seconds to start.

Skipped, saying which, when nginx, pgbouncer, redis-server or PostgreSQL's binaries are
missing (`apt-get install nginx pgbouncer redis-server postgresql`; `.ci/run` installs them).
"""

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from support.processes import Unavailable
from support.stack import Stack

PASSWORD = "scale-out-pass-1"
LOGIN_LIMIT = 5
# Limits the scenarios do not test are raised so that they do not get in the way; the login
# limit keeps a small value to be observed.
SETTINGS = {
    "PASSWORD_HASH_MEMORY_KIB": "1024",
    "PASSWORD_HASH_ITERATIONS": "1",
    "PASSWORD_HASH_BCRYPT_ROUNDS": "4",
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_DEFAULT": "100000/minute",
    "RATE_LIMIT_REGISTER": "100000/hour",
    "RATE_LIMIT_ORDERS": "100000/minute",
    "RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT}/minute",
    "OUTBOX_POLL_INTERVAL": "0.5",
}


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="stack-")), settings=SETTINGS)
    try:
        stack.up()
    except Unavailable as reason:
        pytest.skip(str(reason))
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture
async def nginx(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture
async def replicas(stack: Stack) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client for each replica, bypassing nginx."""
    async with (
        httpx.AsyncClient(base_url=stack.replica_url(1), timeout=30) as first,
        httpx.AsyncClient(base_url=stack.replica_url(2), timeout=30) as second,
    ):
        yield [first, second]
