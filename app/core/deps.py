"""Platform dependencies as `Annotated` aliases, below every domain: each names one thing.

Domain dependencies chain these (`ItemServiceDep` takes `SessionDep` and `CacheDep`); a
signature says exactly what it needs, and a test swaps any of them with
`app.dependency_overrides[get_cache] = ...`.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from opentelemetry.trace import Tracer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import after_commit, request_transaction
from app.core.etag import ETagJSONRenderer, etag_json
from app.core.outbox import OutboxDispatcher, take_enqueued
from app.core.rate_limit import (
    LimitSource,
    client_ip,
    parse_limit,
    report_verdict,
)
from app.core.resources import Resources
from app.core.security import PasswordHasher, TokenCodec


def resources_of(request: Request) -> Resources:
    """The app's platform objects, for dependencies on the hot paths to read directly.

    Each dependency FastAPI resolves costs a request about 70,000 instructions (~10 us)
    whatever it does, far more than the attribute read most platform dependencies are: the
    dependencies every API request runs (the rate limit, the bearer credential, the
    principal, the item reader) take what they need from here instead.
    """
    resources: Resources = request.app.state.resources
    return resources


F = TypeVar("F", bound=Callable[..., Any])
# The dependencies that reach the database; the OpenAPI document gives every operation
# using one of them, at any depth, its 503 (app.core.openapi).
DATABASE_DEPENDENCIES: set[Callable[..., Any]] = set()


def reaches_database(dependency: F) -> F:
    """Mark a dependency that uses the database, directly or through a dependency of its own."""
    DATABASE_DEPENDENCIES.add(dependency)
    return dependency


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@reaches_database
async def get_engine(request: Request) -> AsyncEngine:
    return resources_of(request).reads


# For the lean read paths that need one statement on a plain connection, not a session; in
# autocommit, so such a read is one round trip. Writes go through `SessionDep`.
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


@reaches_database
async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return resources_of(request).sessionmaker


# For reads that run concurrently, each on a session of its own, and for independent
# transactions (`app.core.db.independent_transaction`).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_redis(request: Request) -> Redis | None:
    return resources_of(request).redis


# None when REDIS_URL is unset; code that uses it must work without it.
RedisDep = Annotated[Redis | None, Depends(get_redis)]


async def get_outbox(request: Request) -> OutboxDispatcher:
    return resources_of(request).outbox


@reaches_database
async def get_session(
    sessionmaker: SessionmakerDep, outbox: Annotated[OutboxDispatcher, Depends(get_outbox)]
) -> AsyncIterator[AsyncSession]:
    """One session per request, in the transaction the request owns (`request_transaction`).

    Bound with `scope="function"` so the commit happens before the response is sent: a
    client never sees success for a write that then fails to commit. Outbox messages the
    request enqueued are committed with it, and only then announced to the dispatchers
    (this process's, and on PostgreSQL every replica's).
    """
    async with request_transaction(sessionmaker) as session:

        async def announce_outbox() -> None:
            if take_enqueued(session):
                await outbox.announce()

        after_commit(session, announce_outbox)
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_cache(request: Request) -> Cache:
    return resources_of(request).cache


CacheDep = Annotated[Cache, Depends(get_cache)]


async def get_password_hasher(request: Request) -> PasswordHasher:
    return resources_of(request).passwords


PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]


async def get_token_codec(request: Request) -> TokenCodec:
    return resources_of(request).tokens


TokenCodecDep = Annotated[TokenCodec, Depends(get_token_codec)]


# The calling client's IP address (X-Forwarded-For only from TRUSTED_PROXIES).
ClientIPDep = Annotated[str, Depends(client_ip)]
# `return etag_json(model)` renders a JSON body with a strong ETag, or a 304 on a match.
ETagJSON = Annotated[ETagJSONRenderer, Depends(etag_json)]


async def get_tracer(request: Request) -> Tracer:
    """The tracer services use for domain spans; a no-op tracer when tracing is off."""
    tracer: Tracer = request.app.state.tracer
    return tracer


TracerDep = Annotated[Tracer, Depends(get_tracer)]

RateLimitKey = Callable[..., Awaitable[str]]


def RateLimit(  # noqa: N802 - reads as the dependency it builds: Depends(RateLimit(...))
    limit: LimitSource, *, scope: str, key: RateLimitKey = client_ip
) -> Callable[..., Awaitable[None]]:
    """A dependency limiting requests per key within a scope.

    `limit` is a literal ("5/minute") or a function of the settings
    (`lambda settings: settings.rate_limit_login`), read on each request so an app built
    from other settings gets its own limits. `key` is any dependency returning a string
    (the client IP by default; a user id, or IP and username for a login form). `scope`
    separates limits that share a key.
    """
    if isinstance(limit, str):
        parse_limit(limit)

    async def check_rate_limit(
        request: Request,
        response: Response,
        identity: Annotated[str, Depends(key)],
    ) -> None:
        resources = resources_of(request)
        if not resources.settings.rate_limit_enabled:
            return
        value = limit if isinstance(limit, str) else limit(resources.settings)
        verdict = await resources.rate_limiter.hit(parse_limit(value), scope, identity)
        report_verdict(verdict, value, scope=scope, response=response)

    return check_rate_limit
