"""Catalog items.

Revision ID: 9a4d6e2f0b13
Revises: 7c3e9b1d2a40
Created: 2026-11-24 20:21:02.541865
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db.base

revision: str = "9a4d6e2f0b13"
down_revision: str | None = "7c3e9b1d2a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "created_at",
            app.core.db.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            app.core.db.base.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint("price > 0", name=op.f("ck_items_price_positive")),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_items_stock_not_negative")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_items_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_items_name_id", ["name", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_items_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_items_price_id", ["price", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_price_id")
        batch_op.drop_index(batch_op.f("ix_items_owner_id"))
        batch_op.drop_index("ix_items_name_id")
        batch_op.drop_index("ix_items_created_at_id")

    op.drop_table("items")
