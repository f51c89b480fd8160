"""The near cache: each worker's copy of what it last read from Redis, served without a
round trip for as long as it can prove no newer value exists anywhere.

The guarantee it keeps is the shared cache's: once a write has been answered, on any replica,
no read on any replica serves what was there before. An entry here can be out of date only
while an invalidation for it is on its way, so the worker must know when every invalidation
sent up to some moment has arrived, and the writer must not answer before that moment has
passed everywhere. A lease does both (Gray and Cheriton's leases, with the fencing Chubby's
clients use):

- Each worker holds one connection to Redis with `CLIENT TRACKING ON BCAST PREFIX` over the
  cache's keys: Redis pushes the name of every key written under that prefix to it, in order
  with its replies on that connection. The worker sends `PING` on it every `lease / 5`.
- A PONG proves that every invalidation Redis pushed before it had arrived, and so every
  write Redis had completed by the time that PING was sent. A worker serves from here at
  time t only if a PONG has arrived for a PING it sent at or after t - lease.
- A writer, once Redis has acknowledged its DEL or INCR, waits `lease` before it answers.
  A read that reaches any worker after that answer is then served either from Redis or the
  database, or from a near copy whose last PONG was sent after the write completed, and so
  arrived after its invalidation did. Only each machine's clock rate matters, never the
  difference between their clocks.
- A value read from Redis is kept only if no invalidation arrived while it was being read
  (an epoch counts them), so a read that raced a write cannot keep the old value.

Anything that stops the PONGs (a stalled event loop, a slow link, Redis down or restarting,
the connection lost) lets the lease lapse: reads then go to Redis or the database, never to
an old copy, and a lost connection empties this cache before a new one starts.

A worker busy enough that its loop takes longer than a lease to come round to a PONG lets
the lease lapse too, while the channel is fine. A read that then finds its key held waits
for the proof instead (`renew`): the PONG of a PING sent since a lease before the read
began, shared by every read waiting, rather than a GET of its own (which costs a worker
about as much as the rest of a cached read). It waits only while the channel answers
within `SLOW_CHANNEL_LEASES` leases, and never longer, so a stalled channel still sends
reads to Redis at once. A Redis
Cluster has a tracking table on each primary; the near cache is for a single Redis (with
REDIS_CLUSTER, reads go to Redis as they would without it).
"""

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable

from app.core.cache.resp import Push, RespConnection, RespError
from app.core.tasks import raise_if_cancelled, stop

logger = logging.getLogger(__package__)

# How long to wait before connecting again after the channel failed, at most.
_RECONNECT_MAX_SECONDS = 5.0
# A channel whose oldest unanswered PING is older than this many leases is treated as
# stalled: reads stop waiting for its proofs and go to Redis.
SLOW_CHANNEL_LEASES = 4


class NearCache:
    """Values of Redis keys under `prefix`, kept in this process under a lease."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        lease_seconds: float,
        max_entries: int,
        connect_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.lease = lease_seconds
        self.max_entries = max_entries
        self.connect_timeout = connect_timeout
        self._clock = clock
        self._entries: dict[str, bytes] = {}
        # Incremented by every invalidation: a value read across a change is not kept.
        self.epoch = 0
        # The send time of the newest PING answered: reads are served until `lease` after.
        self._proven_at = float("-inf")
        self._pings: collections.deque[float] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._connection: RespConnection | None = None
        # Resolved by the next PONG (or the channel's loss): what reads renewing wait on.
        self._next_proof: asyncio.Future[None] | None = None

    @property
    def valid(self) -> bool:
        return self._clock() - self._proven_at <= self.lease

    def get(self, key: str) -> bytes | None:
        if self._clock() - self._proven_at > self.lease:
            return None
        return self._entries.get(key)

    def peek(self, key: str) -> bytes | None:
        """What is held for `key`, proven current or not."""
        return self._entries.get(key)

    async def renew(self) -> bool:
        """For a read that found the lease lapsed: wait until every invalidation sent up to
        a lease before now has arrived (true), or give up at once or soon (false) when the
        channel is down or slower than `SLOW_CHANNEL_LEASES` leases."""
        connection = self._connection
        now = self._clock()
        since = now - self.lease
        patience = SLOW_CHANNEL_LEASES * self.lease
        if connection is None or (self._pings and now - self._pings[0] > patience):
            return False
        if not self._pings or self._pings[-1] < since:
            self._send_ping(connection)
        deadline = now + patience
        while self._proven_at < since:
            if self._connection is not connection or self._clock() > deadline:
                return False
            if self._next_proof is None or self._next_proof.done():
                loop = asyncio.get_running_loop()
                self._next_proof = proof = loop.create_future()
                # Waiters look at the clock again at least this often, PONG or not.
                loop.call_later(self.lease, _settle, proof)
            await asyncio.shield(self._next_proof)
        return True

    def put(self, key: str, value: bytes, epoch: int) -> None:
        """Keep `value`, read from Redis while the epoch was `epoch`, if nothing changed since."""
        if epoch != self.epoch or not self.valid:
            return
        if len(self._entries) >= self.max_entries and key not in self._entries:
            # The oldest kept first: cheaper than tracking recency on every hit.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = value

    def forget(self) -> None:
        self._entries.clear()
        self.epoch += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="near-cache invalidations")

    async def stop(self) -> None:
        if self._task is not None:
            await stop(self._task)
            self._task = None
        self._proven_at = float("-inf")
        self.forget()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._listen()
            except (OSError, TimeoutError, EOFError, RespError) as error:
                raise_if_cancelled()
                logger.warning("near cache: invalidation channel lost (%s); reading Redis", error)
            # Whatever was held may have changed while no invalidations could arrive.
            self._proven_at = float("-inf")
            self.forget()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    async def _listen(self) -> None:
        connection = await RespConnection.open(self.url, connect_timeout=self.connect_timeout)
        try:
            connection.send("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self.prefix)
            await connection.reply()
            self._pings.clear()
            self._connection = connection
            pinger = asyncio.create_task(self._ping(connection))
            try:
                await self._read(connection)
            finally:
                self._connection = None
                self._prove()
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
        finally:
            await connection.close()

    async def _ping(self, connection: RespConnection) -> None:
        interval = self.lease / 5
        while True:
            self._send_ping(connection)
            await asyncio.sleep(interval)

    def _send_ping(self, connection: RespConnection) -> None:
        self._pings.append(self._clock())
        connection.send("PING")

    def _prove(self) -> None:
        """Wake the reads renewing the lease, to look at it again."""
        if self._next_proof is not None:
            _settle(self._next_proof)
            self._next_proof = None

    async def _read(self, connection: RespConnection) -> None:
        while True:
            frame = await connection.frame()
            if isinstance(frame, Push):
                if frame and frame[0] == b"invalidate":
                    self._invalidate(frame[1] if len(frame) > 1 else None)
                continue
            if frame == "PONG" and self._pings:
                self._proven_at = self._pings.popleft()
                self._prove()

    def _invalidate(self, keys: list[bytes] | None) -> None:
        self.epoch += 1
        if keys is None:
            # FLUSHDB or FLUSHALL: every key may have changed.
            self._entries.clear()
            return
        for key in keys:
            self._entries.pop(key.decode(), None)


def _settle(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)
