"""The long-lived clients a running application owns, opened and closed by its lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.rate_limit import RateLimiter
from app.core.redis import create_redis


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    cache: Cache
    rate_limiter: RateLimiter


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    engine = create_engine(settings)
    redis = create_redis(settings.redis_url) if settings.redis_url else None
    try:
        yield Resources(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            cache=Cache.from_settings(settings, redis),
            rate_limiter=RateLimiter.from_settings(settings, redis),
        )
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
