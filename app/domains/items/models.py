from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, BigIntId, TimestampMixin


class Item(TimestampMixin, Base):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        # The last line of defence for stock: no code path can sell what is not there.
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        # Each sort order the catalog offers has an index; id breaks ties for stable pages.
        Index("ix_items_created_at_id", "created_at", "id"),
        Index("ix_items_price_id", "price", "id"),
        Index("ix_items_name_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int]
    owner_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
