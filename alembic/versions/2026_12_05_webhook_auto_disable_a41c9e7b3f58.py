"""Webhook endpoints: dead deliveries in a row, and why the service turned one off.

Revision ID: a41c9e7b3f58
Revises: 6e2a4f8c1d97
Created: 2026-12-05 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a41c9e7b3f58"
down_revision: str | None = "6e2a4f8c1d97"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column and one with a constant default: neither rewrites the table.
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("disabled_reason", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("dead_in_a_row", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("dead_in_a_row")
        batch.drop_column("disabled_reason")
