"""The near cache keeps the shared cache's guarantee: once a write has answered, no replica
serves what was there before, whatever happens to the invalidation channel or to Redis.

Two `Cache`s play two replicas: each with a near cache of its own, both over one Redis, and
one "database" (a dict) their loaders read. A write is what a service does: change the
database, then invalidate through its own replica's cache (which waits out the lease).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.core.cache import JSON, Cache
from app.core.cache.near import NearCache
from app.core.cache.resp import Push, RespConnection, RespError
from support.processes import free_port
from support.servers import RedisServer
from tests.conftest import TEST_REDIS_URL
from tests.waiting import eventually

LEASE = 0.025
PREFIX = "near-test:cache"

needs_redis = pytest.mark.skipif(TEST_REDIS_URL is None, reason="needs Redis: TEST_REDIS_URL")


class Database:
    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def loader(self, key: str) -> Callable[[], Awaitable[int]]:
        async def load() -> int:
            await asyncio.sleep(0)
            return self.rows[key]

        return load


@dataclass
class Replica:
    cache: Cache
    near: NearCache


@contextlib.asynccontextmanager
async def replica(redis_url: str, near_url: str | None = None) -> AsyncIterator[Replica]:
    """A replica's cache: Redis at `redis_url`, its invalidation channel through `near_url`."""
    redis = Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
    near = NearCache(
        near_url or redis_url,
        f"{PREFIX}:",
        lease_seconds=LEASE,
        max_entries=100,
        connect_timeout=0.25,
    )
    near.start()
    cache = Cache(
        redis, prefix=PREFIX, near=near, settle_seconds=LEASE, failure_cooldown=0.2, ttl=60
    )
    try:
        await eventually(lambda: _ready(near))
        yield Replica(cache, near)
    finally:
        await near.stop()
        await redis.aclose()


async def _ready(near: NearCache) -> bool:
    return near.valid


async def read(replica: Replica, database: Database, key: str) -> int:
    return int(await replica.cache.get_or_set(key, database.loader(key), codec=JSON))


async def read_until_near(replica: Replica, database: Database, key: str) -> None:
    """Read a key until this replica holds it in process (the first read fills Redis)."""
    for _ in range(3):
        await read(replica, database, key)
    assert replica.near.get(f"{PREFIX}:{key}") is not None


async def write(replica: Replica, database: Database, key: str, value: int) -> None:
    database.rows[key] = value
    await replica.cache.delete(key)


@pytest.fixture
async def clean_redis() -> str:
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: TEST_REDIS_URL")
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    return TEST_REDIS_URL


@needs_redis
async def test_a_read_after_a_write_on_another_replica_never_sees_the_old_value(
    clean_redis: str,
) -> None:
    database = Database()
    async with replica(clean_redis) as one, replica(clean_redis) as two:
        for round_ in range(50):
            key = f"thing:{round_ % 5}"
            database.rows.setdefault(key, 0)
            await read_until_near(two, database, key)
            await write(one, database, key, round_ + 1)
            assert await read(two, database, key) == round_ + 1


@needs_redis
async def test_a_stalled_invalidation_channel_sends_reads_to_redis_not_to_old_copies(
    clean_redis: str,
) -> None:
    database = Database()
    async with (
        StallingProxy(clean_redis) as proxy,
        replica(clean_redis) as one,
        replica(clean_redis, proxy.url) as two,
    ):
        key = "thing:1"
        database.rows[key] = 1
        await read_until_near(two, database, key)
        proxy.stall()
        await write(one, database, key, 2)
        # The invalidation is stuck in the proxy: two's lease lapsed instead.
        assert not two.near.valid
        assert await read(two, database, key) == 2
        proxy.resume()
        await eventually(lambda: _ready(two.near))
        assert await read(two, database, key) == 2


@needs_redis
async def test_redis_down_or_restarted_never_brings_back_an_old_copy() -> None:
    server = RedisServer()
    server.start()
    database = Database()
    try:
        async with replica(server.url) as one, replica(server.url) as two:
            key = "thing:1"
            database.rows[key] = 1
            await read_until_near(two, database, key)
            server.stop()
            await write(one, database, key, 2)
            # Redis is gone, and with it the lease: the database answers.
            assert await read(two, database, key) == 2
            server.start()
            await eventually(lambda: _ready(two.near), seconds=15)
            assert await read(two, database, key) == 2
    finally:
        server.destroy()


async def test_a_busy_worker_whose_lease_lapsed_waits_for_the_proof_instead_of_reading_redis() -> (
    None
):
    server = RedisServer()
    server.start()
    database = Database()
    try:
        async with replica(server.url) as one:
            key = "thing:1"
            database.rows[key] = 1
            await read_until_near(one, database, key)
            gets = await _gets(server.url)
            hold_the_loop(2 * LEASE)
            assert not one.near.valid
            assert await read(one, database, key) == 1
            assert await _gets(server.url) == gets
            assert one.near.valid
    finally:
        server.destroy()


async def test_a_renewed_lease_never_serves_what_was_invalidated_before_it(
    clean_redis: str,
) -> None:
    database = Database()
    async with replica(clean_redis) as one:
        key = "thing:1"
        database.rows[key] = 1
        await read_until_near(one, database, key)
        hold_the_loop(2 * LEASE)
        # Changed behind the lapsed lease, by a client that holds the loop meanwhile: the
        # invalidation is on its way, not yet read.
        database.rows[key] = 2
        with SyncRedis.from_url(clean_redis) as redis:
            redis.delete(f"{PREFIX}:{key}")
        assert await read(one, database, key) == 2


def hold_the_loop(seconds: float) -> None:
    """Keep the event loop busy past the lease, as a loaded worker's is: no PONG is read."""
    time.sleep(seconds)


async def _gets(redis_url: str) -> int:
    """How many GETs the Redis server has run."""
    redis = Redis.from_url(redis_url)
    try:
        stats = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


async def test_the_resp_reader_reads_every_frame_redis_sends() -> None:
    frames = (
        b"+PONG\r\n-ERR wrong\r\n:42\r\n$5\r\nhello\r\n$-1\r\n_\r\n#t\r\n,1.5\r\n"
        b"*2\r\n$1\r\na\r\n:1\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n"
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n"
    )
    reader = asyncio.StreamReader()
    reader.feed_data(frames)
    reader.feed_eof()
    connection = RespConnection(reader, None)  # type: ignore[arg-type]
    assert await connection.frame() == "PONG"
    with pytest.raises(RespError, match="wrong"):
        await connection.frame()
    expected = [42, b"hello", None, None, True, 1.5, [b"a", 1], {b"k": b"v"}]
    assert [await connection.frame() for _ in expected] == expected
    push = await connection.frame()
    assert isinstance(push, Push)
    assert push == [b"invalidate", [b"key"]]


class StallingProxy:
    """A TCP proxy to Redis whose answers can be held back, as a slow link holds them."""

    def __init__(self, redis_url: str) -> None:
        host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
        self.target_host, _, port = host_port.rpartition(":")
        self.target_port = int(port)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def __aenter__(self) -> "StallingProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.resume()
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        redis_in, redis_out = await asyncio.open_connection(self.target_host, self.target_port)
        for task in (
            self._pipe(client_in, redis_out, held=False),
            self._pipe(redis_in, client_out, held=True),
        ):
            self._tasks.add(asyncio.create_task(task))

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, held: bool
    ) -> None:
        while data := await source.read(65536):
            if held:
                await self._flowing.wait()
            sink.write(data)
            await sink.drain()
        sink.close()
