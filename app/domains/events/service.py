"""A caller's live event stream: replay from a position, then each event as it commits.

The stream holds no database connection between reads: each batch is read in a short
transaction of its own, and the stream waits in between for the job log's wake-up (a
commit in this process, or a NOTIFY from any other), a heartbeat, or its server's stop.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import raises
from app.core.jobs.wakeups import Signal
from app.core.streams import StreamSlots
from app.domains.events.exceptions import TooManyStreams
from app.domains.events.repository import Batch, EventRepository
from app.domains.events.schemas import HEARTBEAT, OPENING, RESET, Position, live_event

# Events sent per read: a replay after a long absence goes out in bounded reads.
BATCH_SIZE = 100
# How soon to look again when committed events wait for an older transaction to end.
HELD_BACK_RECHECK_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class OpenStream:
    """A stream that has its slot and its start: `close` gives the slot back."""

    position: Position
    reset: bool
    close: Callable[[], None]


class EventFeed:
    """The order events one caller may see (`owner`'s, or every one when None)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        committed: Signal,
        *,
        user_id: int,
        owner: int | None,
        slots: StreamSlots,
        heartbeat_seconds: float,
        retention: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._committed = committed
        self._user_id = user_id
        self._owner = owner
        self._slots = slots
        self._heartbeat = heartbeat_seconds
        self._retention = retention
        self._clock = clock

    @raises(TooManyStreams)
    async def open(self, last_event_id: int | None) -> OpenStream:
        """Take one of the caller's stream slots and find where the stream begins."""
        close = await self._slots.take(self._user_id)
        if close is None:
            raise TooManyStreams(self._slots.limit)
        try:
            position, reset = await self._start(last_event_id)
        except BaseException:
            close()
            raise
        return OpenStream(position, reset, close)

    async def _start(self, last_event_id: int | None) -> tuple[Position, bool]:
        """Where the stream begins, and whether it must begin with a reset: just past the
        client's last event while it is kept, else at the end of the log."""
        async with self._sessionmaker() as session:
            events = EventRepository(session)
            if last_event_id is not None:
                since = self._clock() - self._retention
                position = await events.position_of(last_event_id, since=since)
                if position is not None:
                    return position, False
            return await events.end(), last_event_id is not None

    async def stream(self, opened: OpenStream, *, stop: asyncio.Event) -> AsyncIterator[bytes]:
        """The stream's bytes from where it opened until `stop` is set."""
        position, reset = opened.position, opened.reset
        loop = asyncio.get_running_loop()
        yield OPENING
        if reset:
            yield RESET
        next_beat = loop.time() + self._heartbeat
        while not stop.is_set():
            ticket = self._committed.ticket()
            batch = await self._read(position)
            for place, event in batch.events:
                yield live_event(place.id, event)
                position = place
            if batch.full:
                continue
            wait = next_beat - loop.time()
            if batch.held_back:
                wait = min(wait, HELD_BACK_RECHECK_SECONDS)
            await _first_of(ticket, stop, within=max(wait, 0))
            if loop.time() >= next_beat:
                yield HEARTBEAT
                next_beat = loop.time() + self._heartbeat

    async def _read(self, position: Position) -> Batch:
        """The next batch, read to its end even when the stream is cancelled meanwhile (its
        client left): a read cut short would leave its connection for the collector to find
        instead of returning it to the pool."""
        reading = asyncio.ensure_future(self._read_batch(position))
        try:
            return await asyncio.shield(reading)
        except asyncio.CancelledError:
            await asyncio.wait({reading})
            raise

    async def _read_batch(self, position: Position) -> Batch:
        async with self._sessionmaker() as session:
            return await EventRepository(session).after(
                position, owner=self._owner, limit=BATCH_SIZE
            )


async def _first_of(*events: asyncio.Event, within: float) -> None:
    """Return when one of `events` is set, or after `within` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
