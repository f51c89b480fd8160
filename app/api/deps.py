"""Platform dependencies, as `Annotated` aliases that routes and domain dependencies chain."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from opentelemetry.trace import Tracer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.resources import Resources


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
    sees success for a write that then fails to commit.
    """
    async with resources.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_redis(resources: ResourcesDep) -> Redis | None:
    return resources.redis


RedisDep = Annotated[Redis | None, Depends(get_redis)]


async def get_tracer(request: Request) -> Tracer:
    """The tracer services use for domain spans; a no-op tracer when tracing is off."""
    tracer: Tracer = request.app.state.tracer
    return tracer


TracerDep = Annotated[Tracer, Depends(get_tracer)]
