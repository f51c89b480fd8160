"""`make lint` refuses a migration that would lock or rewrite a busy table
(scripts.migration_lint)."""

from pathlib import Path

import pytest

from scripts import migration_lint

# Each one takes a lock every read or write of `items` queues behind, or rewrites the table.
LOCKING = {
    "not_null_without_default": "ALTER TABLE items ADD COLUMN sku text NOT NULL;",
    "plain_index": "CREATE INDEX ix_items_price ON items (price);",
    "type_change": "ALTER TABLE items ALTER COLUMN price TYPE numeric(14, 2);",
    "dropped_column": "ALTER TABLE items DROP COLUMN description;",
    "validated_constraint": ("ALTER TABLE items ADD CONSTRAINT ck_items_stock CHECK (stock >= 0);"),
}
# The same changes made the expand-and-contract way (docs/operations.md).
SAFE = {
    "nullable_column": "ALTER TABLE items ADD COLUMN sku text;",
    "concurrent_index": (
        "SET lock_timeout = '5s';\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_price ON items (price);"
    ),
    "constraint_not_valid": (
        "ALTER TABLE items ADD CONSTRAINT ck_items_stock CHECK (stock >= 0) NOT VALID;"
    ),
}


def _in_transaction(sql: str) -> str:
    # As Alembic writes a revision: one transaction, its lock waits bounded (alembic/env.py).
    return f"BEGIN;\nSET LOCAL lock_timeout = '5000ms';\n{sql}\nCOMMIT;\n"


@pytest.mark.parametrize("name", sorted(LOCKING))
def test_a_locking_change_is_refused(name: str) -> None:
    report = migration_lint.squawk(
        _in_transaction(LOCKING[name]), name, set(migration_lint.GLOBALLY_OFF)
    )
    assert report is not None
    assert f"{name}.sql:" in report


@pytest.mark.parametrize("name", sorted(SAFE))
def test_the_same_change_made_safely_passes(name: str) -> None:
    sql = SAFE[name]
    # CONCURRENTLY cannot run inside a transaction; Alembic's autocommit_block leaves it.
    text = sql if "CONCURRENTLY" in sql else _in_transaction(sql)
    assert migration_lint.squawk(text, name, set(migration_lint.GLOBALLY_OFF)) is None


def test_a_revision_without_a_lock_timeout_is_refused() -> None:
    report = migration_lint.squawk(
        "BEGIN;\nALTER TABLE items ADD COLUMN sku text;\nCOMMIT;\n",
        "unbounded",
        set(migration_lint.GLOBALLY_OFF),
    )
    assert report is not None
    assert "lock-timeout" in report


def test_every_migration_passes_or_is_excused_with_a_reason() -> None:
    assert migration_lint.lint(migration_lint.alembic_config()) == []


def test_the_command_fails_on_a_locking_file(tmp_path: Path) -> None:
    sample = tmp_path / "add_sku.sql"
    sample.write_text(_in_transaction(LOCKING["not_null_without_default"]))
    assert migration_lint.main([str(sample)]) == 1
