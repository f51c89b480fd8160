"""What operators do with the job log: list dead messages, retry them, purge delivered ones."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.jobs.models import OutboxMessage, OutboxStatus

# Small enough that each delete holds its locks only briefly, even on a busy table.
PURGE_BATCH_SIZE = 500


async def dead_messages(session: AsyncSession, *, limit: int) -> list[OutboxMessage]:
    """The newest dead messages first."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(rows)


async def retry_dead(session: AsyncSession, ids: Sequence[int] | None) -> int:
    """Give dead messages (these ids, or all when None) a fresh set of attempts, due now.

    `last_error` stays until the next attempt replaces it, so the cause remains visible.
    """
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, available_at=utcnow(), locked_until=None)
        .execution_options(synchronize_session=False)
    )
    if ids is not None:
        statement = statement.where(OutboxMessage.id.in_(list(ids)))
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount


async def purge_delivered(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    before: datetime,
    batch_size: int = PURGE_BATCH_SIZE,
) -> int:
    """Delete messages delivered before `before`, a batch per transaction; how many went."""
    batch = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.DELIVERED,
            # Implied by the next condition (nothing is delivered before it falls due), and
            # what lets the (status, available_at) index find the rows.
            OutboxMessage.available_at < before,
            OutboxMessage.delivered_at < before,
        )
        .limit(batch_size)
    )
    removed = 0
    while True:
        async with sessionmaker.begin() as session:
            result = cast(
                CursorResult[Any],
                await session.execute(
                    delete(OutboxMessage)
                    .where(OutboxMessage.id.in_(batch.scalar_subquery()))
                    .execution_options(synchronize_session=False)
                ),
            )
        count = result.rowcount
        removed += count
        if count < batch_size:
            return removed
