"""Waiting for what another task or process does in its own time."""

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 10.0) -> None:
    """Wait until `check()` holds, for what another task or process does in its own time."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def clear_of_window_end(window_seconds: float, *, margin: float = 15.0) -> None:
    """Start in a fresh window when the current one ends within `margin` seconds: in a
    window's last tenth the leased default limit takes a busy caller's next units ahead and
    counts them against the ending window, so a test spending an exact budget starts clear of
    that (app.core.rate_limit.leased)."""
    left = window_seconds - time.time() % window_seconds
    if left < margin:
        await asyncio.sleep(left + 0.05)
