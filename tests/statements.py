"""Counting the SQL statements a request sends, for the tests that pin how many it may."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.core.db.reads import DriverReads
from app.core.db.replicas import WATCHER_LABEL
from app.core.jobs.models import CHANNEL
from app.core.resources import Resources

WAKE_UP = f"NOTIFY {CHANNEL}"


@contextmanager
def counted_statements(resources: Resources) -> Iterator[list[str]]:
    """Every statement the app sends while the block runs: through its engine, and through
    the driver its hot reads and one-call writes use on PostgreSQL.

    But the job log's wake-up and the read replicas' watcher: they are sent for the whole
    process, after commits at most once per interval (app.core.jobs.wakeups) or every
    POLL_SECONDS (app.core.db.replicas), so which block they fall in is chance.
    """
    statements: list[str] = []

    def record(statement: str) -> None:
        if statement != WAKE_UP and not statement.endswith(f"AS {WATCHER_LABEL}"):
            statements.append(statement)

    def record_engine(*args: Any) -> None:
        record(str(args[2]))

    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record_engine)
    driver_listeners = [
        *([resources.reads.listeners] if isinstance(resources.reads, DriverReads) else []),
        *([resources.calls.listeners] if resources.calls is not None else []),
    ]
    for listeners in driver_listeners:
        listeners.append(record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record_engine)
        for listeners in driver_listeners:
            listeners.remove(record)
