"""Counting the SQL statements a request sends, for the tests that pin how many it may."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.core.db.reads import DriverReads
from app.core.resources import Resources


@contextmanager
def counted_statements(resources: Resources) -> Iterator[list[str]]:
    """Every statement the app sends while the block runs: through its engine, and through
    the driver its hot reads use on PostgreSQL."""
    statements: list[str] = []

    def record_engine(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record_engine)
    listeners = resources.reads.listeners if isinstance(resources.reads, DriverReads) else []
    listeners.append(statements.append)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record_engine)
        listeners.remove(statements.append)
