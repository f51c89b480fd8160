"""Job log: a dedup key per outbox message, unique when set.

Revision ID: 5d2c8e4a7b61
Revises: 2f8a9c716231
Created: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2c8e4a7b61"
down_revision: str | None = "2f8a9c716231"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Locks checked by scripts.migration_lint, and why this revision may take them.
squawk_exceptions = {
    "require-concurrent-index-creation": "the job log keeps only OUTBOX_RETENTION_DAYS of "
    "messages, so the build is short; enqueueing waits for it, delivery's reads do not",
}


def upgrade() -> None:
    op.add_column("outbox_messages", sa.Column("dedup_key", sa.String(length=200), nullable=True))
    op.create_index(
        "ix_outbox_messages_dedup_key", "outbox_messages", ["dedup_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_dedup_key", table_name="outbox_messages")
    op.drop_column("outbox_messages", "dedup_key")
