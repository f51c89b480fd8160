"""The outbox table and the enqueue that writes to it inside the caller's transaction."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CursorResult,
    Enum,
    Index,
    Integer,
    String,
    Text,
    func,
    or_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, utcnow
from app.core.db.repository import insert_ignoring

# The channel every dispatcher LISTENs on.
CHANNEL = "outbox_messages"

# Session.info key marking that the transaction carries outbox messages.
_ENQUEUED = "outbox.enqueued"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The claim query: pending messages in order of when they fall due.
        Index("ix_outbox_messages_status_available_at", "status", "available_at"),
        # Messages without a key (NULL) never collide.
        Index("ix_outbox_messages_dedup_key", "dedup_key", unique=True),
        # Live events read by topic in the order of their writing transactions.
        Index("ix_outbox_messages_topic_xact_id", "topic", "xact_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(100))
    # Names the effect rather than the attempt to cause it ("order.placed:42"), so causing it
    # twice (a retried handler fanning out again) still leaves one message.
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(
            OutboxStatus,
            name="outbox_status",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=OutboxStatus.PENDING,
        server_default=OutboxStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # Server defaults too, so an operator can requeue or insert a message in plain SQL.
    available_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    delivered_at: Mapped[datetime | None]
    # The writing transaction's id, set by the server on PostgreSQL (the migration gives the
    # default): what lets a reader tell which rows can no longer be joined by an earlier,
    # still uncommitted one. Empty on SQLite, where ids are commit order.
    xact_id: Mapped[int | None] = mapped_column(BigInteger)


async def enqueue(
    session: AsyncSession,
    topic: str,
    payload: Mapping[str, Any],
    *,
    dedup_key: str | None = None,
) -> bool:
    """Add a message to the caller's transaction; it is delivered only if that commits.

    With a `dedup_key` that a stored message already has, nothing is added and the result
    is False. Nothing is committed here: the request owns the transaction. Whoever commits
    should then call the dispatcher's `announce()` when `take_enqueued(session)` is true
    (the request session dependency does); without it the message still goes out at the
    next poll.

    No NOTIFY rides on the insert: PostgreSQL makes every transaction that notified commit
    one after another, across the whole cluster, so one in each request's transaction
    would queue every such commit behind the others. `announce()` wakes the dispatchers
    after the commit instead, at most once per short interval per process.
    """
    inserted = await session.scalar(
        insert_ignoring(session, OutboxMessage, [OutboxMessage.dedup_key])
        .values(topic=topic, payload=dict(payload), dedup_key=dedup_key)
        .returning(OutboxMessage.id)
    )
    if inserted is None:
        return False
    session.info[_ENQUEUED] = True
    return True


async def requeue(
    session: AsyncSession, topic: str, payload: Mapping[str, Any], *, dedup_key: str
) -> bool:
    """Queue the message with `dedup_key` once more, in the caller's transaction: a fresh set
    of attempts, due now, whether it was delivered, dead or waiting for a retry; added anew
    when it was purged since. False while an attempt is in flight, whose worker owns the
    message until it records the outcome or its lease ends.
    """
    if await enqueue(session, topic, payload, dedup_key=dedup_key):
        return True
    now = utcnow()
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.dedup_key == dedup_key,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= now),
            )
            .values(
                status=OutboxStatus.PENDING,
                attempts=0,
                available_at=now,
                delivered_at=None,
                payload=dict(payload),
            )
            .execution_options(synchronize_session=False)
        ),
    )
    if not result.rowcount:
        return False
    session.info[_ENQUEUED] = True
    return True


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to add to the job log: its topic, its payload as JSON, its dedup key."""

    topic: str
    payload: Mapping[str, Any]
    dedup_key: str | None = None


async def enqueue_on(connection: AsyncConnection, messages: Sequence[NewMessage]) -> None:
    """Add `messages` in the transaction open on `connection`, in one statement; those whose
    dedup key a stored message already has are skipped. For writes made without a session
    (one transaction of plain statements); the caller announces them after its commit."""
    if not messages:
        return
    await connection.execute(
        insert_ignoring(connection, OutboxMessage, [OutboxMessage.dedup_key]).values(
            [
                {"topic": m.topic, "payload": dict(m.payload), "dedup_key": m.dedup_key}
                for m in messages
            ]
        )
    )


def take_enqueued(session: AsyncSession) -> bool:
    """Whether messages were enqueued on this session since the last call."""
    return bool(session.info.pop(_ENQUEUED, False))
