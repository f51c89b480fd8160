"""Order events as the job log holds them, read in the order no later commit can break.

On PostgreSQL an id is taken when a row is inserted, not when it commits: a reader going
by id could pass id 11 while id 10 is still uncommitted, and never see 10. Rows are read
instead by (writing transaction, id), and only those whose transaction is older than
every transaction still running (`pg_snapshot_xmin`): no row can ever appear below that
horizon again, so a position once passed is never joined from behind. SQLite writes one
transaction at a time, so there ids are commit order.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.jobs import OutboxMessage
from app.domains.events.schemas import Position
from app.domains.orders.events import ORDER_EVENT, OrderEvent

_HORIZON = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, slots=True)
class Batch:
    events: Sequence[tuple[Position, OrderEvent]]
    # Committed events the horizon holds back: read again shortly, not at the next wake-up.
    held_back: bool
    # As many as asked for: more may follow at once.
    full: bool


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.ordered = session.get_bind().dialect.name == "postgresql"

    async def end(self) -> Position:
        """The position after every event committed so far."""
        if self.ordered:
            horizon = await self.session.scalar(select(_HORIZON))
            return Position(int(horizon or 0), 0)
        last = await self.session.scalar(
            select(func.max(OutboxMessage.id)).where(OutboxMessage.topic == ORDER_EVENT.topic)
        )
        return Position(0, last or 0)

    async def position_of(self, event_id: int, *, since: datetime) -> Position | None:
        """Where the event `event_id` stands, if it is still kept and written since `since`."""
        row = (
            await self.session.execute(
                select(OutboxMessage.xact_id).where(
                    OutboxMessage.id == event_id,
                    OutboxMessage.topic == ORDER_EVENT.topic,
                    OutboxMessage.created_at >= since,
                )
            )
        ).first()
        if row is None:
            return None
        if not self.ordered:
            return Position(0, event_id)
        # Written before the log recorded transactions: it has no place in the order.
        return None if row.xact_id is None else Position(row.xact_id, event_id)

    async def after(self, position: Position, *, owner: int | None, limit: int) -> Batch:
        """Up to `limit` events past `position`, `owner`'s only when given, in stream order."""
        horizon = await self.session.scalar(select(_HORIZON)) if self.ordered else None
        statement = select(OutboxMessage.id, OutboxMessage.xact_id, OutboxMessage.payload).where(
            OutboxMessage.topic == ORDER_EVENT.topic
        )
        if self.ordered:
            statement = statement.where(
                tuple_(OutboxMessage.xact_id, OutboxMessage.id) > (position.xact, position.id)
            ).order_by(OutboxMessage.xact_id, OutboxMessage.id)
        else:
            statement = statement.where(OutboxMessage.id > position.id).order_by(OutboxMessage.id)
        if owner is not None:
            statement = statement.where(
                OutboxMessage.payload["data"]["user_id"].as_integer() == owner
            )
        rows = (await self.session.execute(statement.limit(limit))).all()
        events = [
            (Position(row.xact_id or 0, row.id), OrderEvent.model_validate(row.payload))
            for row in rows
            if horizon is None or row.xact_id < horizon
        ]
        return Batch(events, held_back=len(events) < len(rows), full=len(events) == limit)
