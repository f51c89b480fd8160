"""Counting the SQL statements a request sends, for the tests that pin how many it may."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.core.db.reads import DriverReads
from app.core.jobs.models import CHANNEL
from app.core.resources import Resources

WAKE_UP = f"NOTIFY {CHANNEL}"


@contextmanager
def counted_statements(resources: Resources) -> Iterator[list[str]]:
    """Every statement the app sends while the block runs: through its engine, and through
    the driver its hot reads and one-call writes use on PostgreSQL.

    But the job log's wake-up: it is sent for the whole process, after commits and at most
    once per interval (app.core.jobs.wakeups), so which block it falls in is chance.
    """
    statements: list[str] = []

    def record_engine(*args: Any) -> None:
        statement = str(args[2])
        if statement != WAKE_UP:
            statements.append(statement)

    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record_engine)
    driver_listeners = [
        *([resources.reads.listeners] if isinstance(resources.reads, DriverReads) else []),
        *([resources.calls.listeners] if resources.calls is not None else []),
    ]
    for listeners in driver_listeners:
        listeners.append(statements.append)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record_engine)
        for listeners in driver_listeners:
            listeners.remove(statements.append)
