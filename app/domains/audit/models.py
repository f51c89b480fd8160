from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, BigIntId, utcnow

# The longest textual IP address: an IPv4-mapped IPv6 address in full.
IP_LENGTH = 45


class AuditEvent(Base):
    """One security-relevant change, appended in the transaction that made it.

    No foreign keys on purpose: the log outlives the users, orders and keys it names, and
    an append-only table never blocks the deletion of anything it mentions.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_target", "target_type", "target_id"),
        Index("ix_audit_events_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    request_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(IP_LENGTH))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
