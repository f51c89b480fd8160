"""Trigram indexes for catalog search (PostgreSQL only).

Revision ID: b5e81c2d7f94
Revises: 63b47fd3ebc9
Created: 2026-11-24 20:40:00.000000

`q` matches `ILIKE '%text%'`, which no B-tree can serve; pg_trgm GIN indexes can. SQLite has
no such index type and a catalog small enough to scan, so there this revision does nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b5e81c2d7f94"
down_revision: str | None = "63b47fd3ebc9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Locks checked by scripts.migration_lint, and why this revision may take them.
squawk_exceptions = {
    "require-concurrent-index-creation": "shipped with the items table in the first release, "
    "so it ran on a table nothing had written to yet, as it does on a new database",
}

COLUMNS = ("name", "description")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.create_index(
            f"ix_items_{column}_trgm",
            "items",
            [column],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.drop_index(f"ix_items_{column}_trgm", table_name="items")
    # The extension stays: other objects may depend on it, and it costs nothing unused.
