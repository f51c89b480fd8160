"""How the PostgreSQL engine behaves while the database is failing.

Three listeners on the engine keep an outage from costing requests more than the connect
timeout, and let the pool recover by itself when the server returns:

- every connection is pinged when it leaves the pool, with the connect timeout as its limit
  (SQLAlchemy's `pool_pre_ping` would wait the command timeout); a connection the server
  dropped makes the pool replace all of its connections;
- after the server failed to answer in time, connections are refused at once for as long as
  the timeout: without that, requests queued behind the pool would each wait a full timeout
  in turn, one after another;
- a statement that ran past the command timeout loses its connection, so no rollback waits
  on a server that may never answer.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.db.errors import DatabaseNotAnswering

logger = logging.getLogger(__name__)


class SilenceGate:
    """Refuses connections for `cooldown_seconds` after the server failed to answer."""

    def __init__(
        self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._closed_until = 0.0

    def check(self) -> None:
        if self._clock() < self._closed_until:
            raise DatabaseNotAnswering(
                f"the database did not answer within {self.cooldown_seconds:g}s moments ago"
            )

    def silent(self) -> None:
        if self._clock() >= self._closed_until:
            logger.warning(
                "the database did not answer within %gs; refusing requests for as long",
                self.cooldown_seconds,
            )
        self._closed_until = self._clock() + self.cooldown_seconds


def guard_engine(engine: AsyncEngine, *, connect_timeout: float) -> None:
    gate = SilenceGate(connect_timeout)

    def connect(dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        gate.check()
        try:
            return dialect.connect(*cargs, **cparams)
        except TimeoutError:
            gate.silent()
            raise

    def ping(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any) -> None:
        gate.check()
        driver = dbapi_connection.driver_connection
        try:
            dbapi_connection.run_async(
                lambda conn: conn.execute("SELECT 1", timeout=connect_timeout)
            )
        except TimeoutError as error:
            gate.silent()
            # A graceful close would wait on the silent server too; and asking the pool for
            # a new connection would cost another timeout, so the request fails here.
            driver.terminate()
            raise DatabaseNotAnswering(
                f"no answer to a ping within {connect_timeout:g}s"
            ) from error
        except Exception as error:
            if not driver.is_closed():
                raise
            # The server went away (a restart, a failover): every connection made before now
            # is as dead as this one, so the pool replaces them all, starting with this one.
            raise InvalidatePoolError(str(error)) from error

    event.listen(engine.sync_engine, "do_connect", connect)
    event.listen(engine.sync_engine, "checkout", ping)
    event.listen(engine.sync_engine, "handle_error", _drop_timed_out_connection)


def _drop_timed_out_connection(context: ExceptionContext) -> None:
    """Discard a connection whose statement ran past the command timeout.

    Its server may not answer again, and the rollback that follows would wait for it just as
    long; a closed connection rolls back at once. Only this connection goes: one slow statement
    says nothing about the others, and they are pinged on their next checkout anyway.
    """
    connection = context.connection
    if not isinstance(context.original_exception, TimeoutError) or connection is None:
        return
    driver = None if connection.invalidated else connection.connection.driver_connection
    if driver is not None:
        driver.terminate()
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False
