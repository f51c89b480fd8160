"""The one way code reaches platform objects: the dependencies declared here.

Each platform object a request may use has an `Annotated` alias that names it (`SessionDep`,
`CacheDep`, `SettingsDep`, ...). Domain dependencies chain them (`ItemServiceDep` takes
`SessionDep` and `CacheDep`), so a signature says exactly what it needs and a test swaps any
of them with `app.dependency_overrides[get_cache] = ...`.

A dependency that needs several platform objects at once (the hot paths' readers, the
principal) is marked `@uses_platform` and takes them all as its first parameter instead:
every dependency FastAPI resolves costs a request about 70,000 instructions (~10 us) whatever
it does, more than the attribute read most platform dependencies are, so one node instead of
a chain of them is what keeps the busiest routes cheap. The aliases here are built the same
way.

Nothing else reads the app's state: `ruff` bans `app.core.resources` outside the platform
and the composition root (`[tool.ruff.lint.flake8-tidy-imports]` in pyproject.toml), and
tests/test_architecture.py fails on any other module reading `app.state`.
"""

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar, cast

from fastapi import Depends, Query, Request, Response
from opentelemetry.trace import Tracer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db.keyset import InvalidCursor, cursor_codec
from app.core.db.transactions import after_commit, request_transaction
from app.core.errors import raises
from app.core.http.clients import client_address
from app.core.http.etag import ETagJSONRenderer, etag_json
from app.core.jobs import take_enqueued
from app.core.observability.metrics import RATE_LIMIT_REJECTIONS
from app.core.pagination import MAX_CURSOR_LENGTH, MAX_LIMIT, MAX_OFFSET, PageParams
from app.core.rate_limit import LimitSource, RateLimitExceeded, Verdict, parse_limit
from app.core.resources import Resources
from app.core.security import PasswordHasher, TokenCodec


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


P = ParamSpec("P")
T = TypeVar("T")
# The parameter a platform dependency is given its request under when it declares none.
_REQUEST_PARAMETER = "platform_request"


def uses_platform(
    dependency: Callable[Concatenate[Resources, P], Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """Give a dependency the running app's platform objects as its first argument.

    `async def get_item_reader(platform: Resources) -> ItemReader` marked with this is one
    dependency for FastAPI to resolve, where taking `CacheDep`, `EngineDep` and
    `SessionmakerDep` would be four. Its other parameters are FastAPI's as usual.
    """
    signature = inspect.signature(dependency)
    parameters = list(signature.parameters.values())[1:]
    request_name = next((p.name for p in parameters if p.annotation is Request), None)
    if request_name is None:
        parameters.append(
            inspect.Parameter(
                _REQUEST_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=Request
            )
        )

    @functools.wraps(dependency)
    async def with_platform(*args: P.args, **kwargs: P.kwargs) -> T:
        request = kwargs[request_name] if request_name else kwargs.pop(_REQUEST_PARAMETER)
        return await dependency(_resources(cast(Request, request)), *args, **kwargs)

    with_platform.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters
    )
    return with_platform


F = TypeVar("F", bound=Callable[..., Any])
# The dependencies that reach the database; the OpenAPI document gives every operation
# using one of them, at any depth, its 503 (app.core.http.openapi).
DATABASE_DEPENDENCIES: set[Callable[..., Any]] = set()


def reaches_database(dependency: F) -> F:
    """Mark a dependency that uses the database, directly or through a dependency of its own."""
    DATABASE_DEPENDENCIES.add(dependency)
    return dependency


@uses_platform
async def get_settings(platform: Resources) -> Settings:
    return platform.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@reaches_database
@uses_platform
async def get_engine(platform: Resources) -> AsyncEngine:
    return platform.reads


# For the lean read paths that need one statement on a plain connection, not a session; in
# autocommit, so such a read is one round trip. Writes go through `SessionDep`.
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


@reaches_database
@uses_platform
async def get_sessionmaker(platform: Resources) -> async_sessionmaker[AsyncSession]:
    return platform.sessionmaker


# For reads that run concurrently, each on a session of its own, and for independent
# transactions (`app.core.db.independent_transaction`).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


@uses_platform
async def get_redis(platform: Resources) -> Redis | None:
    return platform.redis


# None when REDIS_URL is unset; code that uses it must work without it.
RedisDep = Annotated[Redis | None, Depends(get_redis)]


@reaches_database
async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, in the transaction the request owns (`request_transaction`).

    Bound with `scope="function"` so the commit happens before the response is sent: a
    client never sees success for a write that then fails to commit. Outbox messages the
    request enqueued are committed with it, and only then announced to the dispatchers
    (this process's, and on PostgreSQL every replica's).
    """
    platform = _resources(request)
    async with request_transaction(platform.sessionmaker) as session:

        async def announce_outbox() -> None:
            if take_enqueued(session):
                await platform.outbox.announce()

        after_commit(session, announce_outbox)
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@uses_platform
async def get_cache(platform: Resources) -> Cache:
    return platform.cache


CacheDep = Annotated[Cache, Depends(get_cache)]


@uses_platform
async def get_password_hasher(platform: Resources) -> PasswordHasher:
    return platform.passwords


PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]


@uses_platform
async def get_token_codec(platform: Resources) -> TokenCodec:
    return platform.tokens


TokenCodecDep = Annotated[TokenCodec, Depends(get_token_codec)]


@uses_platform
async def client_ip(platform: Resources, request: Request) -> str:
    """The calling client's IP address, honouring TRUSTED_PROXIES."""
    return client_address(request, platform.settings.trusted_proxies)


# The calling client's IP address (X-Forwarded-For only from TRUSTED_PROXIES).
ClientIPDep = Annotated[str, Depends(client_ip)]
# `return etag_json(model)` renders a JSON body with a strong ETag, or a 304 on a match.
ETagJSON = Annotated[ETagJSONRenderer, Depends(etag_json)]


@uses_platform
async def get_tracer(platform: Resources) -> Tracer:
    """The tracer services use for domain spans; a no-op tracer when tracing is off."""
    return platform.tracer


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

    @uses_platform
    async def check_rate_limit(
        platform: Resources, response: Response, identity: Annotated[str, Depends(key)]
    ) -> None:
        if not platform.settings.rate_limit_enabled:
            return
        value = limit if isinstance(limit, str) else limit(platform.settings)
        verdict = await platform.rate_limiter.hit(parse_limit(value), scope, identity)
        report_verdict(verdict, value, scope=scope, response=response)

    return check_rate_limit


def report_verdict(verdict: Verdict, limit: str, *, scope: str, response: Response) -> None:
    """Refuse a request over its limit, or put the remaining allowance on its response."""
    if not verdict.allowed:
        RATE_LIMIT_REJECTIONS.labels(scope).inc()
        retry_after = max(1, verdict.reset_after)
        raise RateLimitExceeded(
            f"Rate limit of {limit} exceeded; retry in {retry_after} s.",
            headers=verdict.headers() | {"Retry-After": str(retry_after)},
        )
    # With several limits on one route, the one closest to running out is reported.
    reported = response.headers.get("RateLimit-Remaining")
    if reported is None or verdict.remaining < int(reported):
        for name, value in verdict.headers().items():
            response.headers[name] = value


@raises(InvalidCursor)
async def get_page_params(
    settings: SettingsDep,
    offset: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="items to skip (default 0)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = 20,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CURSOR_LENGTH,
            description="the `next_cursor` of the previous page, with the same filters",
        ),
    ] = None,
) -> PageParams:
    if cursor is not None and offset is not None:
        raise InvalidCursor(
            "Send either `cursor` or `offset`: a cursor says where the page starts."
        )
    return PageParams(
        offset=offset or 0,
        limit=limit,
        cursor=cursor,
        codec=cursor_codec(settings.secret_key.get_secret_value()),
    )


# The list's page: offset and limit, or a cursor from the previous page.
PageParamsDep = Annotated[PageParams, Depends(get_page_params)]
