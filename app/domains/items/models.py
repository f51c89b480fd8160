from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, BigIntId, TimestampMixin


def _trigram_index(column: str) -> Index:
    """A pg_trgm GIN index, so `ILIKE '%text%'` searches need no full scan.

    PostgreSQL only: `ddl_if` keeps it out of other databases' DDL, and the `dialects`
    entry tells alembic/env.py to leave it out of autogenerate's comparison elsewhere.
    """
    index = Index(
        f"ix_items_{column}_trgm",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
        info={"dialects": ("postgresql",)},
    )
    index.ddl_if(dialect="postgresql")
    return index


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
        *(_trigram_index(column) for column in ("name", "description")),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int]
    owner_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
