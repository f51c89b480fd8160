"""Platform dependencies, as `Annotated` aliases that routes and domain dependencies chain."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from opentelemetry.trace import Tracer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import take_after_commit
from app.core.errors import DomainError
from app.core.etag import ETagJSONRenderer, etag_json
from app.core.outbox import OutboxDispatcher, take_enqueued
from app.core.rate_limit import client_ip
from app.core.resources import Resources

logger = logging.getLogger(__name__)


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request; the request owns the transaction.

    Commits when the handler returns and rolls back when it raises. Bound with
    `scope="function"` so the commit happens before the response is sent: a client never
    sees success for a write that then fails to commit. Outbox messages the request enqueued
    are committed with it, and the dispatcher is woken only then, so they go out at once.
    Callbacks registered with `after_commit(session, ...)` run after the commit, too.
    """
    async with resources.sessionmaker() as session:
        try:
            yield session
        except DomainError as error:
            if not error.keeps_changes:
                await session.rollback()
                raise
            await _commit(session, resources)
            raise
        except BaseException:
            await session.rollback()
            raise
        await _commit(session, resources)


async def _commit(session: AsyncSession, resources: Resources) -> None:
    """Commit, then run what must follow a commit, each exactly once.

    The callbacks registered with `app.core.db.after_commit` run here, before the response
    is sent, so the client's next request (to any worker) already sees their effect: an
    invalidated cache entry is gone by then. The write has committed, so a failing
    callback is logged, not turned into an error response that would make the client
    retry a change that was made.
    """
    await session.commit()
    for callback in take_after_commit(session):
        try:
            await callback()
        except Exception:
            logger.exception("after-commit callback %r failed", callback)
    if take_enqueued(session):
        resources.outbox.wake()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_redis(resources: ResourcesDep) -> Redis | None:
    return resources.redis


RedisDep = Annotated[Redis | None, Depends(get_redis)]


async def get_outbox(resources: ResourcesDep) -> OutboxDispatcher:
    return resources.outbox


# For code that commits its own sessions (`SessionDep` already wakes it after its commit):
# call `outbox.wake()` after committing enqueued messages.
OutboxDep = Annotated[OutboxDispatcher, Depends(get_outbox)]


async def get_cache(resources: ResourcesDep) -> Cache:
    return resources.cache


CacheDep = Annotated[Cache, Depends(get_cache)]
# The calling client's IP address (X-Forwarded-For only from TRUSTED_PROXIES), for rate-limit
# keys that combine it with something else.
ClientIPDep = Annotated[str, Depends(client_ip)]
# `return etag_json(model)` renders a JSON body with a strong ETag, or a 304 on a match.
ETagJSON = Annotated[ETagJSONRenderer, Depends(etag_json)]


async def get_tracer(request: Request) -> Tracer:
    """The tracer services use for domain spans; a no-op tracer when tracing is off."""
    tracer: Tracer = request.app.state.tracer
    return tracer


TracerDep = Annotated[Tracer, Depends(get_tracer)]
