"""The Cache class: reads through, writes, invalidates, and shares one load per key.

With read replicas it also keeps the fences (app.core.db.replicas): per namespace, how far the
primary had written after the last commit that changed it. A write raises its namespace's
fence after its commit and before it invalidates; a load asks for a source that has replayed
up to the fence it read, and its value is stored only if the fence has not moved since, in
one step with the store: so no fill stores what a replica older than the last invalidation
returned, and no read after a write's answer is served from before it.
"""

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

from app.core.cache.codecs import JSON, Codec
from app.core.cache.entries import FRESH_UNTIL, Entry, decode
from app.core.cache.flight import SingleFlight
from app.core.cache.local import LocalStore
from app.core.cache.near import NearCache
from app.core.config import Settings
from app.core.db.replicas import UNKNOWN
from app.core.observability.metrics import CACHE_HITS, CACHE_MISSES, TALLY
from app.core.redis import REDIS_ERRORS, RedisBreaker

# Every module of the package logs as `app.core.cache`, so its warnings are found and
# filtered under one name whichever module raised them.
logger = logging.getLogger(__package__)

T = TypeVar("T")
R = TypeVar("R")

_POLL_SECONDS = 0.05
# Only the holder of the lock may release it; a lock that outlived its holder is left alone.
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
# Stores a loaded value only if the fence it was loaded under still stands.
_STORE_IF_FENCE = (
    "if (redis.call('get', KEYS[2]) or '0') == ARGV[3] then "
    "return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end"
)
# Fences only rise: of two writers, the later position stays whichever arrives last.
_RAISE_FENCE = (
    "if tonumber(redis.call('get', KEYS[1]) or '0') < tonumber(ARGV[1]) then "
    "redis.call('set', KEYS[1], ARGV[1]) end"
)
# A namespace's next version; a missing version key starts from the seed (the clock).
_BUMP = (
    "if redis.call('exists', KEYS[1]) == 0 then redis.call('set', KEYS[1], ARGV[1]) end "
    "return redis.call('incr', KEYS[1])"
)


class _Unavailable(Exception):
    """Redis failed or is cooling down; the caller treats it as a miss."""


class Cache:
    """Cache-aside with stampede protection and namespace versioning.

    `hits`, `misses`, `stale_hits` and `errors` count what happened, for metrics to read.
    """

    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str = "cache",
        ttl: float = 60.0,
        stale: float = 30.0,
        lock_seconds: float = 5.0,
        lock_wait: float = 0.5,
        local_max_entries: int = 10_000,
        failure_cooldown: float = 5.0,
        clock: Callable[[], float] = time.time,
        enabled: bool = True,
        breaker: RedisBreaker | None = None,
        near: NearCache | None = None,
        settle_seconds: float = 0.0,
        position: Callable[[], Awaitable[int]] | None = None,
        cluster: bool = False,
    ) -> None:
        self.hits = 0
        self.misses = 0
        self.stale_hits = 0
        self.errors = 0
        self._enabled = enabled
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl
        self._stale = stale
        self._lock_ms = int(lock_seconds * 1000)
        self._lock_wait = lock_wait
        self._clock = clock
        self._local = LocalStore(local_max_entries, clock)
        self._versions: dict[str, int] = {}
        self._flights = SingleFlight()
        self._breaker = breaker or RedisBreaker("cache", failure_cooldown)
        self._unlock = redis.register_script(_UNLOCK) if redis is not None else None
        self._near = near
        # How long an invalidation waits before its write answers: the near caches' lease.
        self._settle = settle_seconds
        # The primary's position after a commit; None without read replicas (no fences).
        self._position = position
        self._fences: dict[str, int] = {}
        # On a cluster the fence and the value live on different nodes: no one-step store.
        self._cluster = cluster
        self._store_if_fence = redis.register_script(_STORE_IF_FENCE) if redis is not None else None
        self._raise_fence = redis.register_script(_RAISE_FENCE) if redis is not None else None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        redis: Redis | None,
        breaker: RedisBreaker | None = None,
        near: NearCache | None = None,
        position: Callable[[], Awaitable[int]] | None = None,
    ) -> "Cache":
        return cls(
            redis,
            prefix=f"{settings.redis_key_prefix}:cache",
            ttl=settings.cache_ttl_seconds,
            stale=settings.cache_stale_seconds,
            lock_seconds=settings.cache_lock_seconds,
            lock_wait=settings.cache_lock_wait_seconds,
            local_max_entries=settings.cache_local_max_entries,
            failure_cooldown=settings.redis_failure_cooldown_seconds,
            enabled=settings.cache_enabled,
            breaker=breaker,
            near=near,
            # Every replica's writers wait, whether or not their own near cache runs: any
            # other replica's may hold what they invalidate.
            settle_seconds=settings.cache_near_lease_ms / 1000 if settings.near_cache else 0.0,
            position=position,
            cluster=settings.redis_cluster,
        )

    def forget_local(self) -> None:
        """Drop what this process holds (the in-process store and namespace versions).

        Redis is left as it is: this is for a process whose view may no longer be trusted.
        """
        self._local.clear()
        self._versions.clear()
        if self._near is not None:
            self._near.forget()

    async def delete(self, *keys: str) -> None:
        full_keys = [self._key(key) for key in keys]
        if self._redis is None:
            for full_key in full_keys:
                self._local.delete(full_key)
            return
        redis = self._redis
        try:
            await self._call(lambda: redis.delete(*full_keys))
        except _Unavailable:
            logger.warning("cache: could not delete %s; stale until its TTL ends", keys)
        # Even when Redis failed: replicas' near caches then lose their lease meanwhile.
        await self._settled()

    async def bump(self, namespace: str) -> None:
        """Invalidate every key stored under `namespace` by moving to a new version."""
        await self.raise_fence(namespace)
        if self._redis is None:
            self._versions[namespace] = self._versions.get(namespace, 0) + 1
            return
        redis, version_key = self._redis, self._version_key(namespace)

        async def increment() -> None:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.set(version_key, self._seed(), nx=True)
                pipe.incr(version_key)
                await pipe.execute()

        try:
            await self._call(increment)
        except _Unavailable:
            logger.warning("cache: could not bump %r; its lists stale until TTL ends", namespace)
        await self._settled()

    async def invalidate(self, *keys: str, namespace: str) -> None:
        """`delete(*keys)` and `bump(namespace)` in one round trip, and one wait for the
        near caches' lease: what a write that changed some cached values and every list
        showing them costs after its commit."""
        await self.raise_fence(namespace)
        full_keys = [self._key(key) for key in keys]
        if self._redis is None:
            for full_key in full_keys:
                self._local.delete(full_key)
            self._versions[namespace] = self._versions.get(namespace, 0) + 1
            return
        redis, version_key, seed = self._redis, self._version_key(namespace), self._seed()

        async def delete_and_increment() -> None:
            # Not a MULTI: the keys live in different hash slots on a cluster, where each
            # command of the pipeline goes to its own node. The version's one-key script
            # keeps `bump`'s guarantee that a lost version restarts from the clock.
            async with redis.pipeline(transaction=False) as pipe:
                for full_key in full_keys:
                    pipe.delete(full_key)
                pipe.eval(_BUMP, 1, version_key, seed)
                await pipe.execute()

        try:
            await self._call(delete_and_increment)
        except _Unavailable:
            logger.warning(
                "cache: could not invalidate %s and %r; stale until their TTL ends",
                keys,
                namespace,
            )
        # Even when Redis failed: replicas' near caches then lose their lease meanwhile.
        await self._settled()

    async def raise_fence(self, name: str) -> None:
        """After a commit that changed what `name`'s reads show: from now on they are served
        only by a source that has replayed it (module docstring). `invalidate` and `bump`
        raise their namespace's; a write with nothing cached calls this itself."""
        if self._position is None:
            return
        try:
            position = await self._position()
        except Exception as error:
            # The commit stands; only reads of it from a lagging replica are at risk, and a
            # replica lagging past READ_REPLICA_MAX_LAG_SECONDS is not read from at all.
            logger.warning("cache: no WAL position for the %r fence: %s", name, error)
            return
        raise_fence, fence_key = self._raise_fence, self._key(f"fence:{name}")
        if raise_fence is None:
            self._fences[name] = max(self._fences.get(name, 0), position)
            return
        try:
            await self._call(lambda: raise_fence(keys=[fence_key], args=[position]))
        except _Unavailable:
            logger.warning("cache: could not raise the %r fence", name)

    async def fence(self, name: str) -> int:
        """How far a read of `name` must have been replayed: 0 when nothing has changed it
        (or no replica is configured), UNKNOWN (the primary) when Redis cannot say."""
        if self._position is None:
            return 0
        if self._redis is None:
            return self._fences.get(name, 0)
        fence_key = self._key(f"fence:{name}")
        raw: bytes | str | None = self._near.get(fence_key) if self._near is not None else None
        if raw is None:
            redis = self._redis
            try:
                raw = await self._get(redis, fence_key)
            except _Unavailable:
                return UNKNOWN
        return int(raw) if raw else 0

    async def _settled(self) -> None:
        """Wait out the near caches' lease, so none serves what was just invalidated once
        the write answers (app.core.cache.near)."""
        if self._settle:
            await asyncio.sleep(self._settle)

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]],
        ttl: float | None = None,
        *,
        codec: Codec[T] = JSON,
        namespace: str | None = None,
    ) -> T:
        """The cached value of `key`, or `loader()`'s result, stored for `ttl` seconds.

        Concurrent calls for one key in this process share one `loader()` call. With Redis,
        a short lock lets one replica recompute an expired key while the others serve the
        stale value, or wait up to CACHE_LOCK_WAIT_SECONDS when there is none.
        """

        async def load(_since: int) -> T:
            return await loader()

        return await self.get_or_set_since(key, None, load, ttl, codec=codec, namespace=namespace)

    async def get_or_set_since(
        self,
        key: str,
        fence: str | None,
        loader: Callable[[int], Awaitable[T]],
        ttl: float | None = None,
        *,
        codec: Codec[T] = JSON,
        namespace: str | None = None,
    ) -> T:
        """`get_or_set`, for a value a read replica may load: `loader(since)` must read from
        a source that has replayed `since` (`Replicas.reads(since)`), the `fence` namespace's
        position, and what it returns is stored only if no write raised the fence meanwhile.
        """
        if not self._enabled:
            return await loader(await self._since(fence))
        near = self._near
        if near is not None:
            raw = self._near_raw(near.get, key, namespace)
            if raw is None and not near.valid and self._near_raw(near.peek, key, namespace):
                # Held, but the lease lapsed: a proof shared with every read waiting is
                # cheaper than a GET of this read's own.
                raw = self._near_raw(near.get, key, namespace) if await near.renew() else None
            if raw is not None and (found := self._near_hit(raw, key, namespace, codec)):
                return found[0]
        return await self._flights.share(
            (namespace, key),
            lambda: self._load_through(key, namespace, loader, ttl or self._ttl, codec, fence),
            codec,
        )

    async def _load_through(
        self,
        key: str,
        namespace: str | None,
        loader: Callable[[int], Awaitable[T]],
        ttl: float,
        codec: Codec[T],
        fence: str | None,
    ) -> tuple[T, bytes]:
        full_key = await self._namespaced_key(key, namespace)
        if full_key is None:
            # The namespace version is unknown, so nothing read or written could be trusted.
            self._count_miss(key, namespace)
            value = await loader(await self._since(fence))
            return value, codec.dumps(value)
        entry = await self._read(full_key)
        if entry is not None and entry.fresh and (found := decode(codec, entry, full_key)):
            self._count_hit(key, namespace)
            return found[0], entry.data
        may_load, token = await self._try_lock(full_key)
        try:
            if not may_load:
                if entry is not None and (found := decode(codec, entry, full_key)):
                    self.stale_hits += 1
                    self._count_hit(key, namespace)
                    return found[0], entry.data
                fresh = await self._wait_for(full_key)
                if fresh is not None and (found := decode(codec, fresh, full_key)):
                    self._count_hit(key, namespace)
                    return found[0], fresh.data
            self._count_miss(key, namespace)
            since = await self._since(fence)
            value = await loader(since)
            data = codec.dumps(value)
            await self._write(full_key, data, ttl, fence, since)
            return value, data
        finally:
            if token is not None:
                await self._release(full_key, token)

    def _near_raw(
        self, lookup: Callable[[str], bytes | None], key: str, namespace: str | None
    ) -> bytes | None:
        """What the near cache holds for `key` (`lookup` says whether under its lease)."""
        if namespace is None:
            return lookup(self._key(key))
        version = lookup(self._version_key(namespace))
        if version is None:
            return None
        return lookup(f"{self._prefix}:{namespace}:v{int(version)}:{key}")

    def _near_hit(
        self, raw: bytes, key: str, namespace: str | None, codec: Codec[T]
    ) -> tuple[T] | None:
        """A near copy's value, while it is fresh."""
        if len(raw) < FRESH_UNTIL.size:
            return None
        (fresh_until,) = FRESH_UNTIL.unpack_from(raw)
        if self._clock() >= fresh_until:
            return None
        found = decode(codec, Entry(data=raw[FRESH_UNTIL.size :], fresh=True), key)
        if found is not None:
            self._count_hit(key, namespace)
        return found

    async def _get(self, redis: Redis, full_key: str) -> bytes | str | None:
        """GET, keeping the value as a near copy unless an invalidation arrived meanwhile."""
        near = self._near
        epoch = near.epoch if near is not None else 0
        raw: bytes | str | None = await self._call(lambda: redis.get(full_key))
        if near is not None and isinstance(raw, bytes):
            near.put(full_key, raw, epoch)
        return raw

    def _count_hit(self, key: str, namespace: str | None) -> None:
        self.hits += 1
        TALLY.count(CACHE_HITS, _metric_namespace(key, namespace))

    def _count_miss(self, key: str, namespace: str | None) -> None:
        self.misses += 1
        TALLY.count(CACHE_MISSES, _metric_namespace(key, namespace))

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    def _version_key(self, namespace: str) -> str:
        return f"{self._prefix}:{namespace}:version"

    def _seed(self) -> int:
        # Versions start from the clock, not 0: if a version key is lost (eviction, a flush),
        # its new value cannot coincide with one that entries still in Redis were written under.
        return int(self._clock() * 1000)

    async def _namespaced_key(self, key: str, namespace: str | None) -> str | None:
        if namespace is None:
            return self._key(key)
        if self._redis is None:
            version = self._versions.get(namespace, 0)
            return f"{self._prefix}:{namespace}:v{version}:{key}"
        redis, version_key = self._redis, self._version_key(namespace)
        try:
            raw = await self._get(redis, version_key)
            if raw is None:
                await self._call(lambda: redis.set(version_key, self._seed(), nx=True))
                raw = await self._call(lambda: redis.get(version_key))
        except _Unavailable:
            return None
        if raw is None:
            return None
        return f"{self._prefix}:{namespace}:v{int(raw)}:{key}"

    async def _read(self, full_key: str) -> Entry | None:
        if self._redis is None:
            raw: bytes | str | None = self._local.get(full_key)
        else:
            try:
                raw = await self._get(self._redis, full_key)
            except _Unavailable:
                return None
        if not isinstance(raw, bytes) or len(raw) < FRESH_UNTIL.size:
            return None
        (fresh_until,) = FRESH_UNTIL.unpack_from(raw)
        return Entry(data=raw[FRESH_UNTIL.size :], fresh=self._clock() < fresh_until)

    async def _since(self, fence: str | None) -> int:
        return 0 if fence is None else await self.fence(fence)

    async def _write(
        self, full_key: str, data: bytes, ttl: float, fence: str | None = None, since: int = 0
    ) -> None:
        payload = FRESH_UNTIL.pack(self._clock() + ttl) + data
        fenced = fence is not None and self._position is not None
        if self._redis is None:
            # One process is the whole deployment here, and the in-flight map already stops
            # a stampede, so there is no one to serve a stale value to.
            if not fenced or self._fences.get(fence or "", 0) == since:
                self._local.set(full_key, payload, ttl)
            return
        redis, keep_ms = self._redis, int((ttl + self._stale) * 1000)
        store_if_fence = self._store_if_fence
        try:
            if not fenced:
                await self._call(lambda: redis.set(full_key, payload, px=keep_ms))
            elif since == UNKNOWN:
                return
            elif self._cluster or store_if_fence is None:
                # Two steps: a write landing between them may still be overwritten, until TTL.
                if await self.fence(fence or "") == since:
                    await self._call(lambda: redis.set(full_key, payload, px=keep_ms))
            else:
                fence_key = self._key(f"fence:{fence}")
                await self._call(
                    lambda: store_if_fence(
                        keys=[full_key, fence_key], args=[payload, keep_ms, since]
                    )
                )
        except _Unavailable:
            return

    async def _try_lock(self, full_key: str) -> tuple[bool, str | None]:
        """(may this caller load, the lock token to release afterwards)."""
        if self._redis is None:
            return True, None
        redis, token = self._redis, secrets.token_hex(8)
        try:
            acquired = await self._call(
                lambda: redis.set(f"{full_key}:lock", token, nx=True, px=self._lock_ms)
            )
        except _Unavailable:
            return True, None
        return (True, token) if acquired else (False, None)

    async def _release(self, full_key: str, token: str) -> None:
        unlock = self._unlock
        if unlock is None:
            return
        try:
            await self._call(lambda: unlock(keys=[f"{full_key}:lock"], args=[token]))
        except _Unavailable:
            return

    async def _wait_for(self, full_key: str) -> Entry | None:
        """A fresh value written by the replica holding the lock, if it comes in time."""
        deadline = time.monotonic() + self._lock_wait
        while time.monotonic() < deadline and self._breaker.closed:
            await asyncio.sleep(_POLL_SECONDS)
            entry = await self._read(full_key)
            if entry is not None and entry.fresh:
                return entry
        return None

    async def _call(self, command: Callable[[], Awaitable[R]]) -> R:
        if not self._breaker.closed:
            raise _Unavailable
        try:
            result = await command()
        except REDIS_ERRORS as error:
            self.errors += 1
            self._breaker.failed(error)
            raise _Unavailable from error
        self._breaker.succeeded()
        return result


def _metric_namespace(key: str, namespace: str | None) -> str:
    # Keys read "kind:id"; labelling by the kind keeps the metric's cardinality small.
    return namespace or key.partition(":")[0]
