"""Waiting for what another task or process does in its own time."""

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 10.0) -> None:
    """Wait until `check()` holds, for what another task or process does in its own time."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)
