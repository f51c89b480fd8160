"""The long-lived clients a running application owns, opened and closed by its lifespan."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from opentelemetry.trace import NoOpTracer, Tracer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.cache.near import NearCache
from app.core.config import Settings
from app.core.db.calls import Calls
from app.core.db.engine import driver_dsn, open_database
from app.core.db.keyset import CursorCodec, cursor_codec
from app.core.db.reads import Reads
from app.core.db.replicas import Replicas
from app.core.jobs import OutboxDispatcher
from app.core.rate_limit import LeasedLimiter, RateLimiter
from app.core.redis import RedisBreaker, create_redis
from app.core.security import PasswordHasher, TokenCodec
from app.core.streams import StreamSlots

# How long shutdown waits for in-flight deliveries: inside gunicorn's --graceful-timeout, so
# the dispatcher, not a SIGKILL, decides. A delivery cut short is retried after its lease.
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    # Single-row reads at the driver's cost (app.core.db.reads).
    reads: Reads
    # Writes that are one call at the driver's cost (app.core.db.calls); None on SQLite.
    calls: Calls | None
    # The reads a replica may serve, given the position they must see (app.core.db.replicas).
    replicas: Replicas
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    passwords: PasswordHasher
    tokens: TokenCodec
    outbox: OutboxDispatcher
    cache: Cache
    rate_limiter: RateLimiter
    # The default limit every API request spends, from per-worker leases.
    default_limiter: LeasedLimiter
    # Services' domain spans; a no-op tracer when tracing is off.
    tracer: Tracer
    # Signs and reads the lists' cursors (SECRET_KEY's, derived).
    cursors: CursorCodec
    # Live event streams open in this process, per user (EVENTS_MAX_STREAMS_PER_USER).
    streams: StreamSlots


# Fills a dispatcher with the handlers of every message type; app.core knows none of them,
# so the composition root (app.jobs) provides it.
RegisterHandlers = Callable[[OutboxDispatcher, Settings, async_sessionmaker[AsyncSession]], None]


def create_outbox(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    register_handlers: RegisterHandlers,
) -> OutboxDispatcher:
    outbox = OutboxDispatcher(
        sessionmaker,
        batch_size=settings.outbox_batch_size,
        max_attempts=settings.outbox_max_attempts,
        poll_interval=settings.outbox_poll_interval,
        lease_seconds=settings.outbox_lease_seconds,
        backoff_base=settings.outbox_retry_base_seconds,
        backoff_max=settings.outbox_retry_max_seconds,
        retention=timedelta(days=settings.outbox_retention_days),
        # LISTEN holds its connection for good, which a transaction-mode pooler cannot give.
        listen_dsn=None
        if settings.uses_sqlite
        else driver_dsn(settings.outbox_listen_url or settings.sqlalchemy_url),
        notify_others=not settings.uses_sqlite,
    )
    register_handlers(outbox, settings, sessionmaker)
    return outbox


@asynccontextmanager
async def open_resources(
    settings: Settings, register_handlers: RegisterHandlers, tracer: Tracer | None = None
) -> AsyncIterator[Resources]:
    async with (
        open_database(settings) as database,
        _open_redis(settings) as redis,
        _open_near_cache(settings) as near,
    ):
        # One breaker for the one Redis: when it fails for the rate limiter, the cache does
        # not wait out the same timeout again in the same request, and one probe tests it
        # for both.
        breaker = RedisBreaker("caches and rate limits", settings.redis_failure_cooldown_seconds)
        # Built even when disabled, so request code can always call announce(): it then only
        # tells the dedicated workers (or other replicas) that deliver the messages.
        outbox = create_outbox(settings, database.sessionmaker, register_handlers)
        if settings.outbox_enabled:
            outbox.start()
        default_limiter = LeasedLimiter(
            redis, key_prefix=f"{settings.redis_key_prefix}:lease", breaker=breaker
        )
        streams = StreamSlots(
            settings.events_max_streams_per_user,
            redis,
            breaker,
            key_prefix=f"{settings.redis_key_prefix}:streams",
        )
        try:
            yield Resources(
                settings=settings,
                engine=database.engine,
                reads=database.reads,
                calls=database.calls,
                replicas=database.replicas,
                sessionmaker=database.sessionmaker,
                redis=redis,
                passwords=PasswordHasher(settings),
                tokens=TokenCodec(settings),
                outbox=outbox,
                cache=Cache.from_settings(
                    settings,
                    redis,
                    breaker,
                    near,
                    # Fences only matter where a replica may answer a read.
                    position=database.replicas.position if database.replicas.enabled else None,
                ),
                rate_limiter=RateLimiter.from_settings(settings, redis, breaker),
                default_limiter=default_limiter,
                tracer=tracer or NoOpTracer(),
                cursors=cursor_codec(settings.secret_key.get_secret_value()),
                streams=streams,
            )
        finally:
            await outbox.stop(grace_seconds=SHUTDOWN_GRACE_SECONDS)
            await default_limiter.aclose()
            await streams.aclose()


@asynccontextmanager
async def _open_redis(settings: Settings) -> AsyncIterator[Redis | None]:
    if settings.redis_url is None:
        yield None
        return
    redis = create_redis(
        settings.redis_url, timeout=settings.redis_timeout, cluster=settings.redis_cluster
    )
    try:
        yield redis
    finally:
        await redis.aclose()


@asynccontextmanager
async def _open_near_cache(settings: Settings) -> AsyncIterator[NearCache | None]:
    if not settings.near_cache or settings.redis_url is None:
        yield None
        return
    near = NearCache(
        settings.redis_url,
        f"{settings.redis_key_prefix}:cache:",
        lease_seconds=settings.cache_near_lease_ms / 1000,
        max_entries=settings.cache_near_max_entries,
        connect_timeout=settings.redis_timeout,
    )
    near.start()
    try:
        yield near
    finally:
        await near.stop()
