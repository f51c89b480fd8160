from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, composite, mapped_column, relationship

from app.core.db.base import Base, BigIntId, TimestampMixin, utcnow


class OrderStatus(StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"
    SHIPPED = "shipped"


class ShippingMethod(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    OVERNIGHT = "overnight"


@dataclass(frozen=True)
class PostalAddress:
    street: str
    city: str
    country: str


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('placed', 'cancelled', 'shipped')", name="status"),
        CheckConstraint(
            "shipping_method IN ('standard', 'express', 'overnight')", name="shipping_method"
        ),
        CheckConstraint("subtotal >= 0 AND shipping_cost >= 0 AND total >= 0", name="money"),
        # "My orders, newest first" (and an administrator's filter by user); id breaks ties
        # so pages are stable.
        Index("ix_orders_user_id_created_at_id", "user_id", "created_at", "id"),
        # Administrators list every order, optionally by status, newest first.
        Index("ix_orders_created_at_id", "created_at", "id"),
        Index("ix_orders_status_created_at_id", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    # RESTRICT: an order is a financial record; users are deactivated, never deleted.
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PLACED)
    shipping: Mapped[str] = mapped_column("shipping_method", String(16))
    shipping_cost: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    subtotal: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    address: Mapped[PostalAddress] = composite(
        mapped_column("address_street", String(200)),
        mapped_column("address_city", String(100)),
        mapped_column("address_country", String(2)),
    )

    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order",
        lazy="raise",
        order_by="OrderLine.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        UniqueConstraint("order_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    # No index of its own: the unique (order_id, item_id) constraint's index serves it.
    order_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("orders.id", ondelete="CASCADE"))
    # SET NULL: deleting an item from the catalog must not rewrite or block order history.
    # The line keeps what was sold (name, price, quantity) without the link.
    item_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    item_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    line_total: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    order: Mapped[Order] = relationship(back_populates="lines", lazy="raise")


class IdempotencyStatus(StrEnum):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


class IdempotencyKey(Base):
    """One client-chosen key per user: the request it was first used with and its answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # The constraint, not a lookup, decides which of two concurrent requests owns a key.
        UniqueConstraint("user_id", "key"),
        CheckConstraint("status IN ('in_flight', 'completed')", name="status"),
    )

    # Random rather than sequential, so a claim is never confused with a later one on the
    # same key (SQLite reuses freed integer ids).
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the canonical request body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=IdempotencyStatus.IN_FLIGHT)
    response_status: Mapped[int | None] = mapped_column(default=None)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed for the purge of expired keys (idempotency.purge_chore), which looks for them
    # whoever owns them.
    expires_at: Mapped[datetime] = mapped_column(index=True)
