"""The shared Redis client: caches, rate limits and anything workers must agree on."""

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    # Short timeouts: Redis is an accelerator here, and a stalled Redis must not stall
    # requests that can fall back to the database or to in-process state.
    return Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=30,
        decode_responses=False,
    )
