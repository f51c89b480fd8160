"""What a running dispatcher keeps track of between claims: the deliveries in flight, at
most a bound of them at once, each in a task of its own, so a slow one holds a slot and
never the ones claimed after it; and alarms for when the retries it scheduled fall due."""

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any


class InFlight:
    """Up to `limit` concurrent deliveries. When one ends while every slot was taken,
    `on_free` is called: more messages may be due by then."""

    def __init__(self, limit: int, on_free: Callable[[], None]) -> None:
        self._limit = limit
        self._on_free = on_free
        self._tasks: set[asyncio.Task[None]] = set()
        self._was_full = False

    @property
    def room(self) -> int:
        return self._limit - len(self._tasks)

    def start(self, delivery: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(delivery, name="outbox-delivery")
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        self._was_full = self.room <= 0

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._was_full:
            self._was_full = False
            self._on_free()

    async def finish(self, deadline: float) -> None:
        """Wait for the deliveries in flight until `deadline` (monotonic); cancel the rest."""
        if not self._tasks:
            return
        remaining = max(0.0, deadline - time.monotonic())
        _, late = await asyncio.wait(set(self._tasks), timeout=remaining)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


class RetryAlarms:
    """Calls `wake` when each retry falls due, so it goes out then rather than at the next
    poll, which may be much later; a moment after, so the claim's clock has passed it."""

    MARGIN_SECONDS = 0.01

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._timers: set[asyncio.TimerHandle] = set()

    def set(self, delay: float) -> None:
        def ring() -> None:
            self._timers.discard(timer)
            self._wake()

        timer = asyncio.get_running_loop().call_later(delay + self.MARGIN_SECONDS, ring)
        self._timers.add(timer)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
