"""The shared Redis client: caches, rate limits and anything workers must agree on."""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a failing Redis raises: protocol and server errors, refused connections, and
# timeouts raised by asyncio rather than by the client.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


class BoundedRedis(Redis):
    """A client whose every command, connecting included, ends within `command_timeout`.

    The socket timeouts bound each read and each connect on their own; this bounds their sum
    too, so a command never costs more than the one limit whatever it has to wait for.
    """

    command_timeout: float = 0.25

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        async with asyncio.timeout(self.command_timeout):
            # redis-py leaves this method unannotated.
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


class BoundedRedisCluster(RedisCluster):
    """BoundedRedis's limit for a Redis Cluster client."""

    command_timeout: float = 0.25

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        async with asyncio.timeout(self.command_timeout):
            return await super().execute_command(*args, **options)


def create_redis(url: str, *, timeout: float, cluster: bool = False) -> Redis:
    # Redis is an accelerator here: every request that uses it can fall back to the database
    # or to in-process state, so a stalled Redis must cost a request no more than `timeout`.
    # The client's default retries (three, with backoff) would multiply that wait; a failed
    # call opens the caller's breaker instead (RedisBreaker).
    # For a cluster, the node in the URL is where the client learns the layout; every key the
    # service touches in one command or script lives in one slot, so any node count works.
    kind: type[BoundedRedis | BoundedRedisCluster] = (
        BoundedRedisCluster if cluster else BoundedRedis
    )
    client = cast(
        BoundedRedis | BoundedRedisCluster,
        kind.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
            decode_responses=False,
        ),
    )
    client.command_timeout = timeout
    # from_url builds an instance of the class it is called on. The cache and the limiter
    # call only commands the two clients share, with the same signatures; typed as one,
    # they need no cluster branch of their own.
    return cast(Redis, client)


class RedisBreaker:
    """Stops calling Redis for a cool-down after it fails, then lets one caller probe it.

    Without it, an unreachable Redis would cost every request its timeout before the fallback
    is used, and would log one warning per request. When the cool-down ends, the first caller
    to ask is the probe: the others keep using the fallback until it reports, so a Redis that
    is still hung costs one request a timeout, not every request in flight. A probe that never
    reports (its task was cancelled) gives way to another after a cool-down.
    """

    def __init__(
        self, name: str, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._open_until: float | None = None
        self._probe: asyncio.Task[Any] | None = None
        self._probe_until = 0.0

    @property
    def closed(self) -> bool:
        """True when this caller may call Redis; it must then report `failed` or `succeeded`."""
        if self._open_until is None:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        task = _current_task()
        if task is not self._probe and now < self._probe_until:
            return False
        self._probe, self._probe_until = task, now + self.cooldown_seconds
        return True

    def failed(self, error: BaseException) -> None:
        if self._open_until is None:
            logger.warning(
                "Redis failed for %s (%s: %s); using the fallback for %gs",
                self.name,
                type(error).__name__,
                error,
                self.cooldown_seconds,
            )
        self._open_until = self._clock() + self.cooldown_seconds
        self._probe, self._probe_until = None, 0.0

    def succeeded(self) -> None:
        if self._open_until is not None:
            logger.info("Redis is back for %s", self.name)
            self._open_until = None
        self._probe, self._probe_until = None, 0.0


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # called outside an event loop: one caller, no concurrency
        return None
