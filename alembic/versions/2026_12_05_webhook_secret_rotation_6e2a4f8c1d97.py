"""Webhook endpoints: the secret a rotation replaced, signing beside the new one until it expires.

Revision ID: 6e2a4f8c1d97
Revises: 3b9d71e5a0c2
Created: 2026-12-05 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db.base

revision: str = "6e2a4f8c1d97"
down_revision: str | None = "3b9d71e5a0c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = app.core.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Nullable columns only: adding them rewrites no table and holds no long lock.
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("previous_secret", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("previous_secret_expires_at", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret")
