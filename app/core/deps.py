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

Nothing else reads the app's state: `platform_of(request)` is the platform's own door (the
edge, the API's route class and the limits use it), and `ruff` bans it and
`app.core.resources` outside the platform and the composition root
(`[tool.ruff.lint.flake8-tidy-imports]` in pyproject.toml); tests/test_architecture.py fails
on any other module reading `app.state`.
"""

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar, cast

from fastapi import Depends, Query, Request
from fastapi.security.base import SecurityBase
from opentelemetry.trace import Tracer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db.replicas import Replicas
from app.core.db.transactions import after_commit, request_transaction
from app.core.errors import raises
from app.core.http.clients import client_address
from app.core.jobs import take_enqueued
from app.core.pagination import PageParams, PageQuery
from app.core.resources import Resources
from app.core.security import PasswordHasher, TokenCodec


def platform_of(connection: HTTPConnection) -> Resources:
    """The running app's platform objects; for app.core only (a lint rule keeps it there)."""
    resources: Resources = connection.app.state.resources
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
        return await dependency(platform_of(cast(Request, request)), *args, **kwargs)

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


# The dependencies that authenticate the caller, each with the security schemes it reads. The
# OpenAPI document declares those schemes on every operation using one (app.core.http.openapi),
# and the API's routes leave the default limit to them (app.core.http.routes): they spend it
# per user once they know the caller, instead of per address.
AUTHENTICATING_DEPENDENCIES: dict[Callable[..., Any], tuple[SecurityBase, ...]] = {}


def authenticates(*schemes: SecurityBase) -> Callable[[F], F]:
    """Mark the dependency that authenticates callers, reading the credentials of `schemes`.

    It reads the header itself instead of depending on the schemes: each would be one more
    dependency for every authenticated request to resolve.
    """

    def mark(dependency: F) -> F:
        AUTHENTICATING_DEPENDENCIES[dependency] = schemes
        return dependency

    return mark


@uses_platform
async def get_settings(platform: Resources) -> Settings:
    return platform.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@reaches_database
@uses_platform
async def get_engine(platform: Resources) -> AsyncEngine:
    return platform.engine


# The engine itself, for what a session does not fit (a readiness ping, the pool's gauges).
# Writes go through `SessionDep`; the hot single-row reads through `@uses_platform`'s `reads`.
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


@reaches_database
@uses_platform
async def get_sessionmaker(platform: Resources) -> async_sessionmaker[AsyncSession]:
    return platform.sessionmaker


# For reads that run concurrently, each on a session of its own, and for independent
# transactions (`app.core.db.independent_transaction`).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


@reaches_database
@uses_platform
async def get_replicas(platform: Resources) -> Replicas:
    return platform.replicas


# For reads a read replica may serve: `replicas.run(since, ...)` with the position they must
# see, a fence of the cache (`CacheDep.fence`). Writes stay on `SessionDep`.
ReplicasDep = Annotated[Replicas, Depends(get_replicas)]


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
    platform = platform_of(request)
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


@uses_platform
async def get_tracer(platform: Resources) -> Tracer:
    """The tracer services use for domain spans; a no-op tracer when tracing is off."""
    return platform.tracer


TracerDep = Annotated[Tracer, Depends(get_tracer)]


@raises(PageParams.of)
@uses_platform
async def get_page_params(platform: Resources, query: Annotated[PageQuery, Query()]) -> PageParams:
    return PageParams.of(query, platform.cursors)


# The list's page: offset and limit, or a cursor from the previous page.
PageParamsDep = Annotated[PageParams, Depends(get_page_params)]
