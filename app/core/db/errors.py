"""Which errors mean the database is unavailable, rather than that the code is wrong.

A database that refuses connections, restarts, stops answering, or has no connection left to
give is a condition a client can retry: app.core.errors answers it 503 with Retry-After, never
500. Such failures reach the handlers in several shapes: SQLAlchemy's own (a pool timeout, an
invalidated connection), asyncpg's raised bare while a connection is being opened, and OSError
or TimeoutError from the socket underneath. This module is the one place that knows them all.
"""

import traceback
from collections.abc import Iterator
from enum import StrEnum

import asyncpg
from sqlalchemy import exc

# asyncpg errors meaning the server cannot serve this connection now: the link broke (SQLSTATE
# class 08), the server is shutting down, starting up or cancelled the statement (class 57),
# or it ran out of connections, memory or disk (class 53).
_SERVER_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

# A bare OSError or TimeoutError means the database only when one of these raised it; from
# anywhere else it is a bug, and stays a 500.
_DRIVER_PACKAGES = frozenset({"sqlalchemy", "asyncpg", "aiosqlite"})


class Unavailability(StrEnum):
    BUSY = "busy"
    """SQLite's single writer lock was not free within the busy timeout."""
    DOWN = "down"
    """The server is unreachable, not answering, restarting or out of connections."""
    OVERLOADED = "overloaded"
    """This worker's connections are all busy: the worker, not the database, is behind."""


class DatabaseNotAnswering(exc.SQLAlchemyError):
    """A pooled connection did not answer its checkout ping within the connect timeout."""


class PoolExhausted(exc.SQLAlchemyError):
    """Every connection of a pool stayed busy for longer than a request may wait for one."""


def classify(error: BaseException) -> Unavailability | None:
    """Why the database could not serve the request, or None when the error is a bug."""
    for cause in _causes(error):
        if isinstance(cause, exc.OperationalError) and "database is locked" in str(cause):
            return Unavailability.BUSY
        if isinstance(cause, PoolExhausted | exc.TimeoutError):
            # SQLAlchemy's TimeoutError is its pool's: no connection came free in time.
            return Unavailability.OVERLOADED
        if isinstance(cause, exc.DisconnectionError | DatabaseNotAnswering):
            return Unavailability.DOWN
        if isinstance(cause, exc.DBAPIError) and cause.connection_invalidated:
            return Unavailability.DOWN
        if isinstance(cause, _SERVER_UNAVAILABLE):
            return Unavailability.DOWN
        if isinstance(cause, asyncpg.InterfaceError) and "connection is closed" in str(cause):
            # The server closed it between its checkout and the statement.
            return Unavailability.DOWN
        if isinstance(cause, asyncpg.InternalClientError) and "cannot switch to state" in str(
            cause
        ):
            # The driver's protocol left mid-operation by a connection the server ended (a
            # fast shutdown or restart): the connection is lost, not misused.
            return Unavailability.DOWN
        if isinstance(cause, OSError) and _raised_by_driver(cause):
            return Unavailability.DOWN
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it wraps: a DBAPI error's driver exception, explicit causes.

    Implicit context is not followed: an error raised while another was being handled says
    nothing about why the first one happened.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            pending.append(current.__cause__)
        if isinstance(current, exc.DBAPIError) and isinstance(current.orig, BaseException):
            pending.append(current.orig)


def _raised_by_driver(error: BaseException) -> bool:
    for frame, _line in traceback.walk_tb(error.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] in _DRIVER_PACKAGES:
            return True
    return False
