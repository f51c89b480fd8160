"""The default limit counted from per-worker leases: never more than the limit across
workers and replicas, little less, and a caller over it refused without asking Redis."""

import asyncio
import math
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.core.rate_limit import LeasedLimiter, parse_limit
from app.core.rate_limit.leased import LEASE_SHARE
from app.core.redis import RedisBreaker
from support.servers import RedisServer
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.skipif(TEST_REDIS_URL is None, reason="needs Redis: TEST_REDIS_URL")

LIMIT = "200/minute"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    assert TEST_REDIS_URL is not None
    client = Redis.from_url(TEST_REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


# The middle of a minute: far from the window's last tenth, where leases are taken ahead.
MID_WINDOW = 60.0 * 28_000_000 + 30


def worker(redis: Redis) -> LeasedLimiter:
    """One worker's limiter: each has its own leases, all share Redis."""
    return LeasedLimiter(
        redis,
        key_prefix="test:lease",
        breaker=RedisBreaker("test", 1.0),
        clock=lambda: MID_WINDOW,
    )


async def test_workers_on_two_replicas_admit_at_most_the_limit_and_nearly_all_of_it(
    redis: Redis,
) -> None:
    item = parse_limit(LIMIT)
    workers = [worker(redis) for _ in range(4)]
    # Concurrent bursts from one caller, spread over every worker, as a load balancer would.
    verdicts = await asyncio.gather(
        *(workers[turn % 4].hit(item, "ip:203.0.113.7") for turn in range(400))
    )
    admitted = sum(verdict.allowed for verdict in verdicts)
    lease = math.ceil(item.amount / LEASE_SHARE)
    # Never more than the limit; at most the units leased to the other workers unused.
    assert admitted <= item.amount
    assert admitted >= item.amount - 3 * lease * 3 // 2
    for limiter in workers:
        await limiter.aclose()


async def test_one_worker_admits_exactly_the_limit_then_refuses_with_retry_after(
    redis: Redis,
) -> None:
    item = parse_limit(LIMIT)
    limiter = worker(redis)
    verdicts = [await limiter.hit(item, "user:7") for _ in range(item.amount + 5)]
    assert [verdict.allowed for verdict in verdicts] == [True] * item.amount + [False] * 5
    refused = verdicts[-1]
    assert 1 <= refused.reset_after <= 60
    assert refused.remaining == 0
    # Another caller has a budget of its own.
    assert (await limiter.hit(item, "user:8")).allowed
    await limiter.aclose()


async def test_a_caller_over_the_limit_is_refused_in_process_until_its_window_ends() -> None:
    server = RedisServer()
    server.start()
    client = Redis.from_url(server.url, socket_timeout=0.25, socket_connect_timeout=0.25)
    try:
        item = parse_limit("20/minute")
        limiter = worker(client)
        for _ in range(20):
            assert (await limiter.hit(item, "ip:198.51.100.1")).allowed
        assert not (await limiter.hit(item, "ip:198.51.100.1")).allowed
        # Without Redis, the refusal still stands: it was remembered, not asked again (an
        # exhausted caller asking Redis again would fall back to counting afresh in process).
        server.stop()
        for _ in range(5):
            assert not (await limiter.hit(item, "ip:198.51.100.1")).allowed
        await limiter.aclose()
    finally:
        await client.aclose()
        server.destroy()


async def test_units_leased_ahead_of_a_window_never_pass_the_limit_at_its_turn(
    redis: Redis,
) -> None:
    item = parse_limit(LIMIT)
    start = 60.0 * 29_000_000
    now = [start + 1]
    limiter = LeasedLimiter(
        redis, key_prefix="test:lease", breaker=RedisBreaker("test", 1.0), clock=lambda: now[0]
    )

    async def spend(hits: int) -> int:
        return sum([(await limiter.hit(item, "user:9")).allowed for _ in range(hits)])

    admitted = await spend(item.amount // 2)
    # The window's last tenth: the next window is leased ahead, then the caller spends what
    # is left of this one.
    now[0] = start + 57
    admitted += await spend(1)
    await limiter.aclose()
    admitted += await spend(item.amount)
    # The next window's first instant weighs the ending window in full: nothing is left.
    now[0] = start + 60
    admitted += await spend(item.amount)
    assert admitted == item.amount
    await limiter.aclose()
