"""The cache's fences (app.core.cache.cache): a load asks for a source at least as new as
the last write, and what it loaded is stored only if no write came meanwhile."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.core.cache import RAW, Cache
from app.core.db.replicas import UNKNOWN
from tests.conftest import TEST_REDIS_URL


@pytest.fixture(params=["memory", "redis"])
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[Redis | None]:
    if request.param == "memory":
        yield None
        return
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    client = Redis.from_url(TEST_REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


class Primary:
    """The primary's WAL position, moved by hand."""

    def __init__(self) -> None:
        self.written = 100

    async def position(self) -> int:
        return self.written

    def commit(self) -> None:
        self.written += 100


@pytest.fixture
def primary() -> Primary:
    return Primary()


async def test_a_load_asks_for_what_the_last_write_left(
    redis: Redis | None, primary: Primary
) -> None:
    cache = Cache(redis, position=primary.position)
    asked: list[int] = []

    async def load(since: int) -> bytes:
        asked.append(since)
        return b"row"

    await cache.get_or_set_since("thing:1", "things", load, codec=RAW)
    primary.commit()
    await cache.invalidate("thing:1", namespace="things")
    await cache.get_or_set_since("thing:1", "things", load, codec=RAW)
    assert asked == [0, 200]


async def test_a_value_loaded_across_a_write_is_not_stored(
    redis: Redis | None, primary: Primary
) -> None:
    cache = Cache(redis, position=primary.position)

    async def load_across_a_write(since: int) -> bytes:
        # What a lagging replica returned, while the write committed and invalidated.
        primary.commit()
        await cache.invalidate("thing:1", namespace="things")
        return b"before the write"

    assert await cache.get_or_set_since("thing:1", "things", load_across_a_write, codec=RAW)

    async def load(since: int) -> bytes:
        return b"after the write"

    assert await cache.get_or_set_since("thing:1", "things", load, codec=RAW) == (
        b"after the write"
    )


async def test_fences_only_rise(redis: Redis | None, primary: Primary) -> None:
    cache = Cache(redis, position=primary.position)
    primary.written = 500
    await cache.raise_fence("things")
    primary.written = 300  # a slower writer's position, arriving last
    await cache.raise_fence("things")
    assert await cache.fence("things") == 500


async def test_without_replicas_there_are_no_fences(redis: Redis | None) -> None:
    cache = Cache(redis)
    await cache.raise_fence("things")
    assert await cache.fence("things") == 0


async def test_a_fence_redis_cannot_tell_sends_the_read_to_the_primary(
    primary: Primary,
) -> None:
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    # Nothing listens there: every call fails at once.
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        cache = Cache(client, position=primary.position)
        assert await cache.fence("things") == UNKNOWN
    finally:
        await client.aclose()
