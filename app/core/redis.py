"""The shared Redis client: caches, rate limits and anything workers must agree on."""

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a failing Redis raises: protocol and server errors, refused connections, and
# timeouts raised by asyncio rather than by the client.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)


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


class RedisBreaker:
    """Stops calling Redis for a cool-down after it fails.

    Without it, an unreachable Redis would cost every request its connect timeout (and the
    client's retries) before the fallback is used, and would log one warning per request.
    """

    def __init__(
        self, name: str, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._open_until: float | None = None

    @property
    def closed(self) -> bool:
        """True when Redis may be called."""
        return self._open_until is None or self._clock() >= self._open_until

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

    def succeeded(self) -> None:
        if self._open_until is not None:
            logger.info("Redis is back for %s", self.name)
            self._open_until = None
