"""Webhook deliveries: why the last attempt failed, and the start of the receiver's answer.

Revision ID: 3b9d71e5a0c2
Revises: 57926acec1c8
Created: 2026-12-05 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b9d71e5a0c2"
down_revision: str | None = "57926acec1c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns only: adding them rewrites no table and holds no long lock.
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("last_error", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("last_response_body", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("last_response_body")
        batch.drop_column("last_error")
