import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from app.core.redis import REDIS_ERRORS, RedisBreaker, create_redis


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_skips_redis_for_the_cooldown_after_a_failure() -> None:
    clock = Clock()
    breaker = RedisBreaker("test", cooldown_seconds=5, clock=clock)
    assert breaker.closed
    breaker.failed(ConnectionError("refused"))
    assert not breaker.closed
    clock.now += 4.9
    assert not breaker.closed
    clock.now += 0.2
    assert breaker.closed
    breaker.succeeded()
    assert breaker.closed


def test_another_failure_restarts_the_cooldown() -> None:
    clock = Clock()
    breaker = RedisBreaker("test", cooldown_seconds=5, clock=clock)
    breaker.failed(ConnectionError("refused"))
    clock.now += 5
    breaker.failed(TimeoutError())
    assert not breaker.closed


async def test_after_the_cooldown_one_caller_probes_while_the_others_use_the_fallback() -> None:
    clock = Clock()
    breaker = RedisBreaker("test", cooldown_seconds=5, clock=clock)
    breaker.failed(ConnectionError("refused"))
    clock.now += 5
    probe_started, others_asked = asyncio.Event(), asyncio.Event()

    async def probe() -> bool:
        allowed = breaker.closed
        probe_started.set()
        await others_asked.wait()
        breaker.failed(TimeoutError())
        return allowed

    async def other() -> bool:
        await probe_started.wait()
        allowed = breaker.closed
        others_asked.set()
        return allowed

    assert list(await asyncio.gather(probe(), other(), other())) == [True, False, False]
    assert not breaker.closed, "the failed probe starts a new cool-down"
    clock.now += 5
    assert breaker.closed
    breaker.succeeded()

    async def anyone() -> bool:
        return breaker.closed

    assert await asyncio.gather(anyone(), anyone()) == [True, True]


async def test_a_probe_that_never_reports_gives_way_after_a_cooldown() -> None:
    clock = Clock()
    breaker = RedisBreaker("test", cooldown_seconds=5, clock=clock)
    breaker.failed(ConnectionError("refused"))
    clock.now += 5

    async def ask() -> bool:
        return breaker.closed

    assert await asyncio.create_task(ask())
    assert not await asyncio.create_task(ask())
    clock.now += 5
    assert await asyncio.create_task(ask())


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers, as a frozen Redis does."""
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def assert_bounded(client: Redis, limit_seconds: float) -> None:
    started = time.perf_counter()
    with pytest.raises(REDIS_ERRORS):
        await client.get("key")
    elapsed = time.perf_counter() - started
    assert elapsed < limit_seconds + 0.15, f"{elapsed:.2f}s: the client retried or waited longer"


async def test_a_hung_redis_costs_a_command_no_more_than_the_timeout() -> None:
    async with silent_server() as port:
        client = create_redis(f"redis://127.0.0.1:{port}/0", timeout=0.2)
        try:
            for _ in range(3):
                await assert_bounded(client, 0.2)
        finally:
            await client.aclose()


async def test_a_hung_cluster_node_costs_a_command_no_more_than_the_timeout() -> None:
    async with silent_server() as port:
        # Learning the cluster's layout is the first command; it must be bounded as any other.
        client = create_redis(f"redis://127.0.0.1:{port}/0", timeout=0.2, cluster=True)
        try:
            await assert_bounded(client, 0.2)
        finally:
            await client.aclose()
