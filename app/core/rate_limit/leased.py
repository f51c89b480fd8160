"""The default limit, counted in each worker against leases of a count shared in Redis.

Every API request spends one unit of its caller's default limit, so the check must cost far
less than a round trip to Redis. Each worker takes the units it hands out in leases: a lease
is one Lua call that grants up to `m` units of the caller's window, and only if the window has
room for them, and the worker then admits that caller's requests from its lease without
asking anyone. When a lease runs low the next one is fetched in the background; a request
waits for Redis only when its worker holds no units for the caller at all (its first request
of a window, or a burst that outran the refill). A window with no room left is remembered:
the caller is refused in process until the window ends, so a client hammering over its limit
costs nothing but the refusal.

Bounds, for a limit of `L` per window and `N` workers across every replica:

- never more than `L` admitted in a window (leases are granted only from room that exists),
  so there is no overshoot to document beyond the window's own approximation below;
- a caller may be refused while up to `N x m x 3/2` units sit leased to other workers (a
  lease is `m = ceil(L / 20)` units, at most 1,000, and is refilled at half), so with one
  worker and a caller that stays on it, all `L` are admitted;
- a caller still busy in the last tenth of its window has its next window's first lease
  taken ahead, so the window's turn costs none of its requests a wait; those units count
  against the ending window too, so there a caller may be refused while up to `N x m` more
  are leased ahead.

The window slides as Cloudflare's does: the previous fixed window's count weighs in by the
share of it the sliding window still covers, so a client cannot double its limit across a
window boundary. While Redis fails, the units come from an in-process moving window instead
(stricter per replica, never off), as for the exact limits.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from limits import RateLimitItem
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from app.core.rate_limit.exact import count_in_process, in_process_counter
from app.core.rate_limit.verdict import Verdict
from app.core.redis import REDIS_ERRORS, RedisBreaker

logger = logging.getLogger(__name__)

# A lease is this share of the limit: large enough that a busy caller costs Redis one call
# per twenty requests (fewer for generous limits), small enough that units leased to idle
# workers rarely refuse a caller early.
LEASE_SHARE = 20
MAX_LEASE = 1000
# Windows whose leases are forgotten at once: a sweep runs every so many new windows.
SWEEP_EVERY = 4096
# The share of a window, at its end, in which a busy caller's next window is leased. The
# early lease counts the ending window in full (its weight is 1 when the next window starts)
# and the ending window's later grants count the units leased ahead, so together they never
# pass the limit.
PRELEASE = 0.1

# Grant up to ARGV[2] units of the window KEYS[1] without passing the limit ARGV[1], the
# previous window (KEYS[2]) weighing ARGV[4] of its count and units already leased from the
# next window (KEYS[3]) weighing in full; return the units granted and the window's count
# after the grant. KEYS share a hash slot (the caller's), so a Redis Cluster takes them in
# one call.
_LEASE = """
local limit, want, ttl, weight = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local used = tonumber(redis.call('get', KEYS[1]) or '0')
local earlier = math.floor(tonumber(redis.call('get', KEYS[2]) or '0') * weight)
local ahead = tonumber(redis.call('get', KEYS[3]) or '0')
local grant = math.min(want, limit - used - earlier - ahead)
if grant <= 0 then
    return {0, used + earlier}
end
used = redis.call('incrby', KEYS[1], grant)
redis.call('pexpire', KEYS[1], ttl)
return {grant, used + earlier}
"""


@dataclass(slots=True)
class _Lease:
    """One caller's units in one fixed window, as this worker holds them."""

    window: int
    tokens: int = 0
    # The window's count as of the last lease, plus what this worker spent since.
    counted: int = 0
    exhausted: bool = False
    refill: "asyncio.Task[None] | None" = field(default=None, repr=False)
    # The next window's lease, taken before this window ends (`PRELEASE`).
    following: "_Lease | None" = field(default=None, repr=False)


class LeasedLimiter:
    """Admits requests from per-worker leases of each caller's window (module docstring)."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        key_prefix: str,
        breaker: RedisBreaker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._script: AsyncScript | None = (
            redis.register_script(_LEASE) if redis is not None else None
        )
        self._prefix = key_prefix
        self._breaker = breaker
        self._clock = clock
        self._leases: dict[tuple[int, int, str], _Lease] = {}
        self._new_windows = 0
        self._fallback = in_process_counter()

    async def hit(self, item: RateLimitItem, identity: str) -> Verdict:
        if self._script is None or not self._breaker.closed:
            return await count_in_process(self._fallback, item, (identity,))
        limit, window = item.amount, item.get_expiry()
        now = self._clock()
        index = int(now // window)
        key = (limit, window, identity)
        lease = self._leases.get(key)
        if lease is None or lease.window != index:
            following = lease.following if lease is not None else None
            if following is None or following.window != index:
                following = _Lease(index)
                self._forget_old_windows(now)
            lease = self._leases[key] = following
        elif lease.following is None and (index + 1) * window - now < window * PRELEASE:
            # A caller still busy as its window ends: take the next window's units now, so
            # its first requests there find them instead of all waiting for Redis at once.
            following = lease.following = _Lease(index + 1)
            following.refill = asyncio.create_task(self._take(key, following, (index + 1) * window))
        while True:
            reset_after = max(1, math.ceil((index + 1) * window - now))
            if lease.exhausted:
                return Verdict(False, limit, 0, reset_after)
            if lease.tokens > 0:
                lease.tokens -= 1
                lease.counted += 1
                if lease.tokens <= _lease_size(limit) // 2 and lease.refill is None:
                    lease.refill = asyncio.create_task(self._take(key, lease, now))
                return Verdict(True, limit, max(0, limit - lease.counted), reset_after)
            if lease.refill is None:
                lease.refill = asyncio.create_task(self._take(key, lease, now))
            # Shielded: a request that gives up must not cancel the lease others wait for.
            await asyncio.shield(lease.refill)
            if not self._breaker.closed:
                return await count_in_process(self._fallback, item, (identity,))

    async def _take(self, key: tuple[int, int, str], lease: _Lease, now: float) -> None:
        limit, window, identity = key
        script = self._script
        try:
            if script is None or not self._breaker.closed:
                return
            elapsed = now - lease.window * window
            weight = max(0.0, 1.0 - elapsed / window)
            prefix = f"{self._prefix}:{limit}/{window}:{{{identity}}}"
            try:
                granted, counted = await script(
                    keys=[
                        f"{prefix}:{lease.window}",
                        f"{prefix}:{lease.window - 1}",
                        f"{prefix}:{lease.window + 1}",
                    ],
                    args=[limit, _lease_size(limit), int(window * 2000), weight],
                )
            except REDIS_ERRORS as error:
                self._breaker.failed(error)
                return
            self._breaker.succeeded()
            if int(granted) == 0:
                lease.exhausted = True
            lease.tokens += int(granted)
            # Units this worker spent while the lease was on its way are in both figures.
            lease.counted = max(lease.counted, int(counted) - lease.tokens)
        finally:
            lease.refill = None

    def _forget_old_windows(self, now: float) -> None:
        self._new_windows += 1
        if self._new_windows % SWEEP_EVERY:
            return
        stale = [
            key
            for key, lease in self._leases.items()
            if (lease.window + 1) * key[1] <= now and lease.refill is None
        ]
        for key in stale:
            del self._leases[key]

    async def aclose(self) -> None:
        """Wait out the leases in flight, for a shutdown that leaves no task behind."""
        leases = [*self._leases.values()]
        leases += [lease.following for lease in leases if lease.following is not None]
        refills = [lease.refill for lease in leases if lease.refill is not None]
        for refill in refills:
            with contextlib.suppress(Exception):
                await refill


def _lease_size(limit: int) -> int:
    return max(1, min(MAX_LEASE, math.ceil(limit / LEASE_SHARE)))
