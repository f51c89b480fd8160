import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from app.core.cache import JSON, RAW, Cache
from app.core.config import Settings
from app.core.deps import CacheDep
from app.core.observability.metrics import TALLY
from app.main import create_app
from tests.conftest import TEST_REDIS_URL, asgi_client

UNREACHABLE_REDIS = "redis://127.0.0.1:9"
V = TypeVar("V")


class Clock:
    """Wall-clock stand-in, so expiry is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def redis_or_none(request: pytest.FixtureRequest) -> AsyncIterator[Redis | None]:
    if request.param == "memory":
        yield None
        return
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
def make_cache(redis_or_none: Redis | None) -> Callable[..., Cache]:
    def make(**options: object) -> Cache:
        return Cache(redis_or_none, **options)  # type: ignore[arg-type]

    return make


def counting_loader(value: V) -> tuple[list[int], Callable[[], Awaitable[V]]]:
    calls: list[int] = []

    async def load() -> V:
        calls.append(1)
        await asyncio.sleep(0)
        return value

    return calls, load


def exported(name: str, namespace: str) -> float:
    """The metric as a scrape would show it (which adds what was counted in process)."""
    TALLY.flush()
    return REGISTRY.get_sample_value(name, {"namespace": namespace}) or 0.0


async def test_miss_then_hit(make_cache: Callable[..., Cache]) -> None:
    cache = make_cache()
    hits, misses = exported("cache_hits_total", "thing"), exported("cache_misses_total", "thing")
    calls, load = counting_loader({"id": 1})
    assert await cache.get_or_set("thing:1", load) == {"id": 1}
    assert await cache.get_or_set("thing:1", load) == {"id": 1}
    assert len(calls) == 1
    assert (cache.misses, cache.hits) == (1, 1)
    assert exported("cache_hits_total", "thing") == hits + 1
    assert exported("cache_misses_total", "thing") == misses + 1


async def test_bytes_and_json_round_trip_with_ttl(make_cache: Callable[..., Cache]) -> None:
    clock = Clock()
    cache = make_cache(clock=clock)
    raw_calls, raw = counting_loader(b"\x00bytes")
    json_calls, doc = counting_loader({"a": [1, 2]})
    for _ in range(2):
        assert await cache.get_or_set("raw", raw, ttl=10, codec=RAW) == b"\x00bytes"
        assert await cache.get_or_set("doc", doc, ttl=10, codec=JSON) == {"a": [1, 2]}
    assert (len(raw_calls), len(json_calls)) == (1, 1)
    clock.now += 11
    await cache.get_or_set("raw", raw, ttl=10, codec=RAW)
    await cache.get_or_set("doc", doc, ttl=10, codec=JSON)
    assert (len(raw_calls), len(json_calls)) == (2, 2)


async def test_a_disabled_cache_always_loads() -> None:
    cache = Cache(None, enabled=False)
    calls, load = counting_loader([1])
    assert [await cache.get_or_set("thing", load) for _ in range(3)] == [[1]] * 3
    assert len(calls) == 3


async def test_delete_forgets_a_key(make_cache: Callable[..., Cache]) -> None:
    cache = make_cache()
    await cache.get_or_set("thing:1", counting_loader({"id": 1})[1])
    await cache.delete("thing:1")
    assert await _load_counting(cache, "thing:1") == [1]


async def test_bump_invalidates_every_list_of_the_namespace(
    make_cache: Callable[..., Cache],
) -> None:
    cache = make_cache()
    for page in ("page:1", "page:2"):
        await cache.get_or_set(page, counting_loader(["old"])[1], namespace="things")
    await cache.get_or_set("other", counting_loader(["kept"])[1], namespace="others")
    await cache.bump("things")
    for page in ("page:1", "page:2"):
        assert await cache.get_or_set(page, counting_loader(["new"])[1], namespace="things") == [
            "new"
        ]
    assert await cache.get_or_set("other", counting_loader(["x"])[1], namespace="others") == [
        "kept"
    ]


async def test_one_loader_runs_for_fifty_concurrent_calls(
    make_cache: Callable[..., Cache],
) -> None:
    cache = make_cache()
    calls, load = counting_loader({"hot": True})
    results = await asyncio.gather(*(cache.get_or_set("hot", load) for _ in range(50)))
    assert results == [{"hot": True}] * 50
    assert len(calls) == 1


async def test_a_failing_loader_fails_its_waiters_and_caches_nothing(
    make_cache: Callable[..., Cache],
) -> None:
    cache = make_cache()

    async def broken() -> object:
        await asyncio.sleep(0)
        raise LookupError("database said no")

    results = await asyncio.gather(
        *(cache.get_or_set("k", broken) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, LookupError) for result in results)
    assert await cache.get_or_set("k", counting_loader(7)[1]) == 7


async def test_waiters_load_themselves_when_the_loading_request_is_cancelled(
    make_cache: Callable[..., Cache],
) -> None:
    cache = make_cache()
    started, never = asyncio.Event(), asyncio.Event()

    async def stuck() -> object:
        started.set()
        await never.wait()
        return "unreachable"

    leader = asyncio.create_task(cache.get_or_set("k", stuck))
    await started.wait()
    waiter = asyncio.create_task(cache.get_or_set("k", counting_loader("fresh")[1]))
    await asyncio.sleep(0)
    leader.cancel()
    assert await waiter == "fresh"
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_raw_bytes_are_cached_as_they_are(make_cache: Callable[..., Cache]) -> None:
    cache = make_cache()
    assert await cache.get_or_set("raw", counting_loader(b"\xff")[1], codec=RAW) == b"\xff"


async def test_an_undecodable_value_is_a_miss(make_cache: Callable[..., Cache]) -> None:
    cache = make_cache()
    await cache.get_or_set("thing", counting_loader(b"not json")[1], codec=RAW)
    assert await cache.get_or_set("thing", counting_loader([1])[1], codec=JSON) == [1]
    calls, load = counting_loader([2])
    assert await cache.get_or_set("thing", load, codec=JSON) == [1]
    assert calls == []


async def test_the_in_process_store_is_bounded() -> None:
    cache = Cache(None, local_max_entries=2)
    for key in ("a", "b", "c"):
        await cache.get_or_set(key, counting_loader(key.encode())[1], codec=RAW)
    reloaded = [bool(await _load_counting(cache, key)) for key in ("c", "b", "a")]
    assert reloaded == [False, False, True]


async def test_a_stale_value_is_served_while_another_replica_recomputes(
    redis_client: Redis,
) -> None:
    await redis_client.flushdb()
    clock = Clock()
    replica_a, replica_b = Cache(redis_client, clock=clock), Cache(redis_client, clock=clock)
    await replica_a.get_or_set("hot", counting_loader("v1")[1], ttl=10)
    clock.now += 11
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_reload() -> object:
        started.set()
        await release.wait()
        return "v2"

    recompute = asyncio.create_task(replica_a.get_or_set("hot", slow_reload, ttl=10))
    await started.wait()
    calls, load = counting_loader("v-b")
    assert await replica_b.get_or_set("hot", load, ttl=10) == "v1"
    assert (calls, replica_b.stale_hits) == ([], 1)
    release.set()
    assert await recompute == "v2"
    assert await replica_b.get_or_set("hot", load, ttl=10) == "v2"


async def test_unreachable_redis_degrades_to_misses_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = Redis.from_url(UNREACHABLE_REDIS)
    try:
        cache = Cache(redis, failure_cooldown=0)
        calls, load = counting_loader({"id": 1})
        assert await cache.get_or_set("thing", load) == {"id": 1}
        assert await cache.get_or_set("thing", load, namespace="things") == {"id": 1}
        await cache.bump("things")
        await cache.delete("thing")
    finally:
        await redis.aclose()
    assert len(calls) == 2
    assert cache.errors > 0
    assert any(record.levelname == "WARNING" for record in caplog.records)


def app_with_cached_routes(settings: Settings) -> tuple[FastAPI, list[int]]:
    application = create_app(settings)
    loads: list[int] = []
    stored: list[str] = ["first"]

    async def load_names() -> list[str]:
        loads.append(1)
        return list(stored)

    @application.get("/names")
    async def list_names(cache: CacheDep) -> list[str]:
        return await cache.get_or_set("all", load_names, namespace="names")

    @application.post("/names/{name}", status_code=204)
    async def add_name(name: str, cache: CacheDep) -> None:
        stored.append(name)
        await cache.bump("names")

    return application, loads


@pytest.mark.usefixtures("empty_redis")
@pytest.mark.parametrize("redis_url", [TEST_REDIS_URL, UNREACHABLE_REDIS])
async def test_routes_read_through_the_cache_and_see_invalidations(
    migrated: Settings, redis_url: str | None
) -> None:
    settings = migrated.model_copy(update={"redis_url": redis_url})
    application, loads = app_with_cached_routes(settings)
    async with application.router.lifespan_context(application), asgi_client(application) as http:
        assert (await http.get("/names")).json() == ["first"]
        assert (await http.get("/names")).json() == ["first"]
        assert (await http.post("/names/second")).status_code == 204
        assert (await http.get("/names")).json() == ["first", "second"]
    cache: Cache = application.state.resources.cache
    if redis_url == UNREACHABLE_REDIS:
        assert len(loads) == 3
        assert cache.hits == 0
    else:
        assert len(loads) == 2
        assert cache.hits == 1


async def _load_counting(cache: Cache, key: str) -> list[int]:
    """The loader calls a read of `key` made: empty when it was served from the cache."""
    calls, load = counting_loader(b"fresh")
    await cache.get_or_set(key, load, codec=RAW)
    return calls


async def test_a_failed_load_is_not_shared_each_waiter_loads_for_itself() -> None:
    cache = Cache(None)
    calls: list[int] = []
    started = asyncio.Event()

    async def failing() -> object:
        calls.append(1)
        started.set()
        await asyncio.sleep(0.01)
        raise LookupError(f"attempt {len(calls)}")

    leader = asyncio.create_task(cache.get_or_set("thing", failing))
    await started.wait()
    waiters = [asyncio.create_task(cache.get_or_set("thing", failing)) for _ in range(3)]
    outcomes = await asyncio.gather(leader, *waiters, return_exceptions=True)

    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    # Every caller met an error of its own load, not the leader's.
    assert len(calls) == 4


async def test_invalidate_forgets_keys_and_every_list_of_the_namespace_at_once(
    make_cache: Callable[..., Cache],
) -> None:
    cache = make_cache()
    for key in ("thing:1", "thing:2", "thing:3"):
        await cache.get_or_set(key, counting_loader("old")[1])
    await cache.get_or_set("page:1", counting_loader(["old"])[1], namespace="things")
    await cache.get_or_set("other", counting_loader(["kept"])[1], namespace="others")

    await cache.invalidate("thing:1", "thing:2", namespace="things")

    assert await _load_counting(cache, "thing:1") == [1]
    assert await _load_counting(cache, "thing:2") == [1]
    assert await _load_counting(cache, "thing:3") == []
    assert await cache.get_or_set("page:1", counting_loader(["new"])[1], namespace="things") == [
        "new"
    ]
    assert await cache.get_or_set("other", counting_loader(["x"])[1], namespace="others") == [
        "kept"
    ]


async def test_invalidate_restarts_a_lost_version_from_the_clock() -> None:
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        await redis.flushdb()
        clock = Clock()
        cache = Cache(redis, prefix="c", clock=clock)
        await cache.invalidate(namespace="things")
        # Entries written under an earlier version can never match a restarted one.
        assert await redis.get("c:things:version") == str(int(clock.now * 1000) + 1).encode()
        await cache.invalidate("thing:1", namespace="things")
        assert await redis.get("c:things:version") == str(int(clock.now * 1000) + 2).encode()
    finally:
        await redis.aclose()
