"""The house rule: the request owns its transaction, and these are its only exits.

`request_transaction` is the one transaction a request has (behind `SessionDep`): it commits
when the handler returns and rolls back when it raises; an error never commits. What must
follow the outcome is a callback registered with `after_commit` or `after_rollback`; what
must not share the request's fate runs in `independent_transaction`, either before the
response or after it, as a background task the response does not wait for (recording an API
key's last use). Nothing else commits, and no read writes. A request that writes in one
database call, as placing an order does, has no session to commit: the call is its
transaction, and what follows the commit follows the call.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "after_commit"
_AFTER_ROLLBACK = "after_rollback"


def after_commit(session: AsyncSession, callback: Callback) -> None:
    """Run `callback` once the transaction on `session` has committed.

    For side effects that must not be seen before the data is (cache invalidation, waking
    the outbox): run earlier, a concurrent read could refill the cache from the old rows.
    Nothing runs when the transaction rolls back.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def after_rollback(session: AsyncSession, callback: Callback) -> None:
    """Run `callback` once the transaction on `session` has rolled back.

    For what must outlive a failed request (recording a refused login, or that a spent
    refresh token came back): the callback writes through `independent_transaction`,
    after the request's own locks are gone, so SQLite's single writer is free for it.
    """
    session.info.setdefault(_AFTER_ROLLBACK, []).append(callback)


@asynccontextmanager
async def request_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The one transaction a request owns: committed when the block ends, rolled back when
    it raises, and never committed on an error.

    After the commit the `after_commit` callbacks run, after a rollback the `after_rollback`
    ones, each exactly once and before the response is sent, so the client's next request
    sees their effect. A failing callback is logged, not turned into an error response: the
    outcome it follows is already final.
    """
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop(_AFTER_COMMIT, None)
            await _run_callbacks(session, _AFTER_ROLLBACK)
            raise
        session.info.pop(_AFTER_ROLLBACK, None)
        await _run_callbacks(session, _AFTER_COMMIT)


@asynccontextmanager
async def independent_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A short transaction of its own, committed when the block ends whatever the request
    does; for the few writes that must not wait for, or share the fate of, a request.
    """
    async with sessionmaker.begin() as session:
        yield session


async def _run_callbacks(session: AsyncSession, kind: str) -> None:
    callbacks: list[Callback] = session.info.pop(kind, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception:
            logger.exception("%s callback %r failed", kind.replace("_", "-"), callback)
