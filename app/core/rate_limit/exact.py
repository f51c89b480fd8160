"""Exact limits, shared through Redis by every worker and replica: the strict ones (logging
in, registering, resetting a password, verifying an email, placing orders).

The strategy is the moving window: a hit counts for exactly one window length after it is
made, so no client gets twice its limit by straddling a window boundary (as a fixed window
allows), and `Retry-After` is the true time until the oldest counted hit expires. It costs a
list of up to `limit` timestamps per client, negligible at the limits used here. Refused
hits are not counted, so hammering does not extend a lock-out.

When Redis fails, limits are counted in process (stricter per replica, never off) until
Redis answers again; a limiter never turns a request into a 500.
"""

import logging
import math
import secrets
import time
from collections.abc import Sequence

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from app.core.config import Settings
from app.core.rate_limit.verdict import Verdict
from app.core.redis import REDIS_ERRORS, RedisBreaker

logger = logging.getLogger(__name__)

# The moving window in one round trip, over a sorted set of hit times: forget the hits that
# left the window, take a slot if fewer than `limit` remain, then report how many the window
# holds and when its oldest leaves it. Each step is logarithmic in the hits kept, so a high
# limit on a busy key costs no more than a low one (a list would be scanned on every hit).
_MOVING_WINDOW = """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('zremrangebyscore', KEYS[1], '-inf', '(' .. (now - window))
local count = redis.call('zcard', KEYS[1])
local allowed = 0
if count < limit then
    redis.call('zadd', KEYS[1], now, ARGV[4])
    redis.call('pexpire', KEYS[1], math.ceil(window * 1000))
    count = count + 1
    allowed = 1
end
local oldest = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {allowed, count, oldest or ARGV[1]}
"""


class RateLimiter:
    """Counts hits in Redis when there is one, in process otherwise or while it fails."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        key_prefix: str = "ratelimit",
        failure_cooldown: float = 5.0,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._local = in_process_counter()
        self._script = redis.register_script(_MOVING_WINDOW) if redis is not None else None
        self._prefix = key_prefix
        self._breaker = breaker or RedisBreaker("rate limits", failure_cooldown)

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: Redis | None, breaker: RedisBreaker | None = None
    ) -> "RateLimiter":
        return cls(
            redis,
            key_prefix=f"{settings.redis_key_prefix}:ratelimit",
            failure_cooldown=settings.redis_failure_cooldown_seconds,
            breaker=breaker,
        )

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        if self._script is not None and self._breaker.closed:
            try:
                verdict = await self._count_shared(self._script, item, identifiers)
            except REDIS_ERRORS as error:
                self._breaker.failed(error)
            else:
                self._breaker.succeeded()
                return verdict
        return await count_in_process(self._local, item, identifiers)

    async def _count_shared(
        self, script: AsyncScript, item: RateLimitItem, identifiers: Sequence[str]
    ) -> Verdict:
        now, window = time.time(), item.get_expiry()
        key = f"{self._prefix}:{item.amount}/{window}:{'/'.join(identifiers)}"
        # Each hit is a member of its own, even two in the same microsecond.
        hit = f"{now!r}:{secrets.token_hex(4)}"
        allowed, count, oldest = await script(keys=[key], args=[now, item.amount, window, hit])
        return Verdict(
            allowed=bool(allowed),
            limit=item.amount,
            remaining=max(0, item.amount - int(count)),
            reset_after=max(0, math.ceil(float(oldest) + window - now)) if count else 0,
        )


def in_process_counter() -> MovingWindowRateLimiter:
    """Where a worker counts hits while Redis fails (or where there is none)."""
    return MovingWindowRateLimiter(MemoryStorage())


async def count_in_process(
    limiter: MovingWindowRateLimiter, item: RateLimitItem, identifiers: Sequence[str]
) -> Verdict:
    allowed = await limiter.hit(item, *identifiers)
    reset_at, remaining = await limiter.get_window_stats(item, *identifiers)
    return Verdict(
        allowed=allowed,
        limit=item.amount,
        remaining=max(0, remaining),
        reset_after=max(0, math.ceil(reset_at - time.time())),
    )
