"""How many long-lived responses (live event streams) each caller holds open.

A stream costs a connection and a task for as long as its client listens, and none of it
passes admission control (app.core.http.edge), so each caller's are bounded here instead.

With Redis, the bound holds across every worker and replica that share it: each open stream
is a member of its caller's sorted set, scored with when it lapses, and taking a slot is one
script that drops lapsed members, counts the rest and adds one only under the limit. A
process renews its streams' members every third of SLOT_SECONDS and removes each as its
stream ends, so a slot is given back at once on a clean end and within SLOT_SECONDS when
the process holding it dies. Times are Redis's own clock, the same for every replica.

Without Redis, or while it fails, each process counts its own streams: a caller may then
hold the limit in each worker process, never more.
"""

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Callable

from redis.asyncio import Redis

from app.core.redis import REDIS_ERRORS, RedisBreaker
from app.core.tasks import stop

logger = logging.getLogger(__name__)

# How long a stream's slot outlives the last renewal of the process holding it.
SLOT_SECONDS = 30.0

_NOW_MS = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""
# KEYS[1] the caller's set; ARGV: the limit, the new member, SLOT_SECONDS in milliseconds.
_TAKE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)
# KEYS[1] the caller's set; ARGV: the member, SLOT_SECONDS in milliseconds.
_RENEW = (
    _NOW_MS
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
)

Release = Callable[[], None]


class StreamSlots:
    """Open streams per caller, at most `limit` each (module docstring)."""

    def __init__(
        self,
        limit: int,
        redis: Redis | None,
        breaker: RedisBreaker,
        *,
        key_prefix: str,
        slot_seconds: float = SLOT_SECONDS,
    ) -> None:
        self.limit = limit
        self._redis = redis
        self._key_prefix = key_prefix
        self._breaker = breaker
        self._slot_ms = int(slot_seconds * 1000)
        self._take_script = redis.register_script(_TAKE) if redis is not None else None
        self._local: Counter[int] = Counter()
        # This process's members in Redis: member -> its caller's key.
        self._held: dict[str, str] = {}
        self._renewal: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()

    async def take(self, caller: int) -> Release | None:
        """A slot for one more of `caller`'s streams and what gives it back (once), or None
        when the caller already holds `limit`."""
        script = self._take_script
        if script is None or not self._breaker.closed:
            return self._take_locally(caller)
        key, member = f"{self._key_prefix}:{caller}", secrets.token_hex(8)
        try:
            taken = await script(keys=[key], args=[self.limit, member, self._slot_ms])
        except REDIS_ERRORS as error:
            self._breaker.failed(error)
            return self._take_locally(caller)
        self._breaker.succeeded()
        if not taken:
            return None
        self._held[member] = key
        if self._renewal is None and self._redis is not None:
            self._renewal = asyncio.create_task(self._renew_every_third(self._redis))
        return self._once(lambda: self._release(member))

    def _take_locally(self, caller: int) -> Release | None:
        if self._local[caller] >= self.limit:
            return None
        self._local[caller] += 1

        def give_back() -> None:
            self._local[caller] -= 1
            if not self._local[caller]:
                del self._local[caller]

        return self._once(give_back)

    @staticmethod
    def _once(release: Release) -> Release:
        released = False

        def give_back() -> None:
            nonlocal released
            if not released:
                released = True
                release()

        return give_back

    def _release(self, member: str) -> None:
        key = self._held.pop(member, None)
        redis = self._redis
        if key is None or redis is None:
            return
        # Called where a stream ends, which cannot wait: the removal runs on, and if Redis
        # does not take it the member lapses by itself.
        task = asyncio.create_task(self._remove(redis, key, member))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    @staticmethod
    async def _remove(redis: Redis, key: str, member: str) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await redis.zrem(key, member)

    async def _renew_every_third(self, redis: Redis) -> None:
        """Every held slot renewed in one round trip, a third of SLOT_SECONDS apart."""
        while True:
            await asyncio.sleep(self._slot_ms / 3000)
            if not self._held:
                continue
            try:
                # Not a MULTI: on a cluster the callers' sets live in different hash slots.
                async with redis.pipeline(transaction=False) as pipe:
                    for member, key in self._held.items():
                        pipe.eval(_RENEW, 1, key, member, self._slot_ms)
                    await pipe.execute()
            except REDIS_ERRORS as error:
                logger.warning(
                    "could not renew live stream slots (%s); they lapse in %gs unless "
                    "Redis answers",
                    type(error).__name__,
                    self._slot_ms / 1000,
                )

    async def aclose(self) -> None:
        """Stop renewing, and give back this process's slots (its streams have ended)."""
        if self._renewal is not None:
            await stop(self._renewal)
            self._renewal = None
        for member in list(self._held):
            self._release(member)
        if self._releases:
            await asyncio.wait(self._releases)
