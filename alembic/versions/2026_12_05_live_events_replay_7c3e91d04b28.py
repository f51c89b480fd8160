"""The job log: which transaction wrote each message, so live events replay in a safe order.

On PostgreSQL every new row records its writing transaction (`pg_current_xact_id()`), by a
server default set after the column is added: adding a nullable column with no default
rewrites nothing, and a default set afterwards applies to new rows only. Rows written
before have none and are never replayed. The index that reads events by that order is
built concurrently, so writers are not blocked while it is. SQLite writes one transaction
at a time, so there ids are commit order and the column stays empty.

Revision ID: 7c3e91d04b28
Revises: a41c9e7b3f58
Created: 2026-12-05 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3e91d04b28"
down_revision: str | None = "a41c9e7b3f58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Locks checked by scripts.migration_lint, and why this revision may take them.
squawk_exceptions = {
    "prefer-robust-stmts": "a concurrent build cannot run in a transaction; with IF NOT "
    "EXISTS on the column and the index the revision runs again after a failure part way "
    "(once an INVALID index left by a failed build is dropped, docs/migrations.md)",
}

INDEX = "ix_outbox_messages_topic_xact_id"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("outbox_messages") as batch:
            batch.add_column(sa.Column("xact_id", sa.BigInteger(), nullable=True))
        op.create_index(INDEX, "outbox_messages", ["topic", "xact_id", "id"])
        return
    op.execute("ALTER TABLE outbox_messages ADD COLUMN IF NOT EXISTS xact_id bigint")
    op.execute(
        "ALTER TABLE outbox_messages "
        "ALTER COLUMN xact_id SET DEFAULT (pg_current_xact_id()::text::bigint)"
    )
    with op.get_context().autocommit_block():
        op.create_index(
            INDEX,
            "outbox_messages",
            ["topic", "xact_id", "id"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(
                INDEX, table_name="outbox_messages", postgresql_concurrently=True, if_exists=True
            )
    else:
        op.drop_index(INDEX, table_name="outbox_messages")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("xact_id")
