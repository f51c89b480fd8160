"""Admission control: a worker answers 503 at once rather than let requests queue past a
client's patience.

At most `limit` requests run in a worker at a time; the others wait in arrival order. A
request that would wait longer than the queue timeout is refused on arrival, from the queue's
length and how long requests have been taking (Little's law: the wait is about the requests
ahead of it times a request's duration, divided by how many run at once), and one that has
waited that long after all is refused then. Either way the client gets `503` with
`urn:problem-type:overloaded` and `Retry-After`, within the timeout, instead of a connection
that hangs until its own timeout fires. A closed-loop client at many connections keeps the
queue full for good, so the estimate, not the mere presence of a queue, decides.
"""

import asyncio
import collections
import math
import time

# How much each finished request moves the running estimate of a request's duration.
_SMOOTHING = 0.1


class Overloaded(Exception):
    """The request cannot start within the queue timeout; `retry_after` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"overloaded; retry in {retry_after} s")
        self.retry_after = retry_after


class Admission:
    def __init__(self, limit: int, queue_timeout: float) -> None:
        self.limit = limit
        self.queue_timeout = queue_timeout
        self.running = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._duration = 0.0

    def enter_now(self) -> bool:
        """Take a running slot if one is free and no one waits for it."""
        if self.running < self.limit and not self._waiting:
            self.running += 1
            return True
        return False

    async def enter(self) -> None:
        """Wait for a running slot in arrival order, or raise `Overloaded`."""
        expected = (len(self._waiting) + 1) * self._duration / self.limit
        if expected > self.queue_timeout:
            raise Overloaded(_seconds(expected))
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await turn
        except BaseException as error:
            if turn.done() and not turn.cancelled():
                # Handed a slot just as it gave up: the slot passes on.
                self.leave(None)
            elif turn in self._waiting:
                self._waiting.remove(turn)
            if isinstance(error, TimeoutError):
                raise Overloaded(_seconds(self.queue_timeout)) from None
            raise

    def leave(self, started: float | None) -> None:
        """Free a slot (and learn from the duration of the request that held it)."""
        if started is not None:
            took = time.perf_counter() - started
            self._duration += _SMOOTHING * (took - self._duration)
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                # The slot passes straight to the next in line: `running` stays as it is.
                turn.set_result(None)
                return
        self.running -= 1


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
