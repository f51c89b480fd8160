"""What the platform's long-running background tasks share."""

import asyncio
import contextlib
from typing import Any


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that a timeout turned into `TimeoutError`.

    When a task is cancelled just as an `asyncio.timeout()` inside it expires, the timeout
    may report the expiry and swallow the cancellation; a loop that retries on TimeoutError
    must then stop, or whoever cancelled it waits forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended, its own cancellation swallowed."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
