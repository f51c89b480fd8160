"""How the PostgreSQL engine behaves while the database is failing.

Listeners on the engine and one heartbeat keep an outage from costing requests more than the
connect timeout (and one heartbeat), and let the pool recover by itself when the server
returns:

- a connection that has been idle for a while is pinged when it leaves the pool, with the
  connect timeout as its limit, and a connection the server dropped (found by the ping, or
  already seen closed by the driver) makes the pool replace all of its connections; a
  connection in steady use is not pinged (a ping on every checkout would cost every request
  a round trip);
- a heartbeat pings the server from each worker every HEARTBEAT_SECONDS on a connection of
  its own: a server that does not answer within the connect timeout closes the gate and
  terminates the connections requests hold, so a statement sent to a server that has just
  stopped answering fails then, rather than at its command timeout;
- after the server failed to answer in time, connections are refused at once until the
  heartbeat hears it again (`SilenceGate`, shared with app.core.db.reads and calls): without
  that, requests queued behind the pool would each wait a full timeout in turn, and a
  request that had queued would pay its wait for a connection and then a connect timeout;
- a statement that ran past the command timeout loses its connection, so no rollback waits
  on a server that may never answer.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from app.core.db.errors import DatabaseNotAnswering
from app.core.tasks import raise_if_cancelled

logger = logging.getLogger(__name__)
# Where a pooled connection remembers when it was last returned.
_RETURNED = "returned_at"


class SilenceGate:
    """Refuses connections from the moment the server failed to answer in time until the
    heartbeat hears it again: while it is silent, no request waits a timeout to find out."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._silent = False

    def check(self) -> None:
        if self._silent:
            raise DatabaseNotAnswering(
                f"the database did not answer within {self.timeout_seconds:g}s and has not "
                "answered since"
            )

    def silent(self) -> None:
        if not self._silent:
            logger.warning(
                "the database did not answer within %gs; refusing requests until it answers",
                self.timeout_seconds,
            )
        self._silent = True

    def answered(self) -> None:
        if self._silent:
            logger.warning("the database answers again; serving requests")
        self._silent = False


# How often each worker's heartbeat asks the server for a sign of life.
HEARTBEAT_SECONDS = 0.5
# A pooled connection idle longer than this is pinged before a request gets it: long enough
# that a busy pool skips the round trip, short enough that a restarted server's dead
# connections are found before a request uses one.
PING_IDLE_SECONDS = 1.0


class Guard:
    """The engine's listeners' shared state: the gate, and the connections requests hold."""

    def __init__(self, connect_timeout: float, clock: Callable[[], float] = time.monotonic):
        self.connect_timeout = connect_timeout
        self.gate = SilenceGate(connect_timeout)
        self._clock = clock
        # Driver connections checked out now, so silence can cut them off.
        self.held: set[Any] = set()

    def cut_off(self) -> None:
        """Terminate every connection a request holds: their statements fail at once."""
        for driver in list(self.held):
            driver.terminate()
        self.held.clear()

    async def heartbeat(self, dsn: str) -> None:
        """Ping the server every HEARTBEAT_SECONDS until cancelled (module docstring)."""
        connection: asyncpg.Connection | None = None
        try:
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                connection = await self._beat(dsn, connection)
        finally:
            if connection is not None:
                connection.terminate()

    async def _beat(
        self, dsn: str, connection: "asyncpg.Connection | None"
    ) -> "asyncpg.Connection | None":
        """One ping; the connection to ping on next time (None: open a new one)."""
        try:
            if connection is None or connection.is_closed():
                connection = await connect_whole(dsn, timeout=self.connect_timeout)
            await connection.execute("SELECT 1", timeout=self.connect_timeout)
        except BaseException as error:
            # Closed here whatever happened, a cancelled heartbeat included: a connection
            # opened in this beat is known to nobody else.
            if connection is not None:
                connection.terminate()
            if not isinstance(error, Exception):
                raise
            raise_if_cancelled()
            if isinstance(error, TimeoutError):
                self.gate.silent()
                self.cut_off()
                return None
            # Refused, reset or stranger (the heartbeat must outlive any failure): requests
            # see that for themselves, quickly. The server did answer, so the gate opens:
            # silence is what it guards against.
            if not isinstance(error, OSError | asyncpg.PostgresError | asyncpg.InterfaceError):
                logger.warning("database heartbeat failed: %s: %s", type(error).__name__, error)
            self.gate.answered()
            return None
        self.gate.answered()
        return connection


async def connect_whole(dsn: str, **options: Any) -> asyncpg.Connection:
    """`asyncpg.connect`, which if cancelled is let finish and then closed: cancelled in the
    middle of its handshake, asyncpg leaves the socket open for the collector to find (a
    worker stopping just as its heartbeat or listener connects)."""
    connecting = asyncio.ensure_future(asyncpg.connect(dsn, **options))
    try:
        return await asyncio.shield(connecting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            (await connecting).terminate()
        raise


def gated_pool(gate: SilenceGate) -> type[AsyncAdaptedQueuePool]:
    """The engine's pool class, refusing a request at once while the gate is closed rather
    than queueing it for a slot: a slot freed by a failed connection attempt wakes nobody,
    so a queued request would wait out the pool timeout, perhaps twice, before the gate."""

    class GatedPool(AsyncAdaptedQueuePool):
        def _do_get(self) -> ConnectionPoolEntry:
            gate.check()
            return super()._do_get()

    return GatedPool


def guard_engine(engine: AsyncEngine, guard: Guard) -> None:
    """Install the listeners (module docstring) on an engine built with `gated_pool`."""
    connect_timeout = guard.connect_timeout
    gate = guard.gate

    def connect(dialect: Dialect, _record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        gate.check()
        try:
            return dialect.connect(*cargs, **cparams)
        except TimeoutError:
            gate.silent()
            raise

    def ping(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        gate.check()
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            # The server closed it since its last use (a restart, a failover): the driver
            # saw the socket go, so this costs no round trip, and the connections made
            # before it are as dead.
            raise InvalidatePoolError("the server closed the connection")
        idle_since = record.info.get(_RETURNED, 0.0)
        if guard._clock() - idle_since < PING_IDLE_SECONDS:
            guard.held.add(driver)
            return
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
        guard.held.add(driver)

    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # None when the connection was invalidated, or a failed checkout could not replace it.
        if dbapi_connection is not None:
            guard.held.discard(dbapi_connection.driver_connection)
        record.info[_RETURNED] = guard._clock()

    def forget(dbapi_connection: Any, _record: ConnectionPoolEntry, _error: Any) -> None:
        if dbapi_connection is not None:
            guard.held.discard(dbapi_connection.driver_connection)

    event.listen(engine.sync_engine, "do_connect", connect)
    event.listen(engine.sync_engine, "checkout", ping)
    event.listen(engine.sync_engine, "checkin", returned)
    event.listen(engine.sync_engine, "invalidate", forget)
    event.listen(engine.sync_engine, "handle_error", _drop_lost_connection)


def _drop_lost_connection(context: ExceptionContext) -> None:
    """Discard a connection whose statement ran past the command timeout, or whose driver
    protocol the server left stuck mid-operation (a fast shutdown: app.core.db.drivers does
    the same for asyncpg's own pools).

    A timed-out server may not answer again, and the rollback that follows would wait for it
    just as long; a closed connection rolls back at once. Only this connection goes: one slow
    statement says nothing about the others, and they are pinged on their next checkout anyway.
    """
    connection = context.connection
    original = context.original_exception
    # SQLAlchemy's adapter wraps asyncpg's protocol error in one of its own.
    stuck = isinstance(original.__cause__, asyncpg.InternalClientError)
    if not (isinstance(original, TimeoutError) or stuck) or connection is None:
        return
    driver = None if connection.invalidated else connection.connection.driver_connection
    if driver is not None:
        driver.terminate()
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False
