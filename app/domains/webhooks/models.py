from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression

from app.core.db.base import Base, BigIntId, TimestampMixin, utcnow

LAST_ERROR_LENGTH = 300
# How much of a receiver's answer a delivery keeps.
RESPONSE_BODY_CHARS = 1024


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # An attempt failed and another is scheduled.
    FAILED = "failed"
    DEAD = "dead"


class DisabledReason(StrEnum):
    # Turned off by the service after too many dead deliveries in a row.
    FAILING = "failing"


class WebhookEndpoint(TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    # The event types it receives, as a list of strings: a handful of endpoints at most, so
    # the fan-out filters them in Python rather than through a join table.
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(500), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    # Stored as issued, not hashed: every delivery is signed with it.
    secret: Mapped[str] = mapped_column(String(100))
    # The secret a rotation replaced: deliveries carry its signature too until it expires,
    # so receivers switch over at their own pace.
    previous_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # Why the service turned it off; None when active or paused by an administrator.
    disabled_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # Dead deliveries since the last one that arrived: past a threshold the endpoint is
    # turned off rather than fail every event for days.
    dead_in_a_row: Mapped[int] = mapped_column(default=0, server_default="0")

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets each delivery is signed with, the current one first."""
        previous = self.previous_secret
        expires = self.previous_secret_expires_at
        if previous is None or expires is None or expires <= now:
            return [self.secret]
        return [self.secret, previous]


class WebhookDelivery(Base):
    """One event for one endpoint: the body it gets on every attempt, and how it went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed', 'dead')", name="status"),
        # A fan-out that runs again (its message retried after a crash) adds nothing.
        UniqueConstraint("endpoint_id", "event_id"),
        # An endpoint's deliveries, newest first.
        Index("ix_webhook_deliveries_endpoint_id_created_at_id", "endpoint_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    # Why the last attempt failed, in words an operator acts on; None once one succeeds.
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_LENGTH), default=None)
    # The start of the receiver's last answer, whatever its status: what it said went wrong.
    last_response_body: Mapped[str | None] = mapped_column(Text, default=None)
    # When the job log tries again: its job's due time, read with the delivery
    # (repository.NEXT_ATTEMPT_AT), since the job log alone decides it.
    next_attempt_at: Mapped[datetime | None] = query_expression()
