"""One load per key at a time within a process: concurrent misses wait for the first."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from app.core.cache.codecs import Codec

T = TypeVar("T")


class _LeaderFailed(Exception):
    """The request loading a key failed or was cancelled; its waiters load it themselves."""


class SingleFlight:
    """Shares the encoded result of one in-flight load with every concurrent caller.

    The bytes are shared rather than the value, so each caller decodes its own copy and no
    two requests hold one mutable object. A failure is not shared: each waiter then loads for
    itself, so the error it meets (a 404, a database outage) is its own, raised where it
    happened and handled as such.
    """

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[bytes]] = {}

    async def share(
        self,
        flight: Hashable,
        load: Callable[[], Awaitable[tuple[T, bytes]]],
        codec: Codec[T],
    ) -> T:
        while (pending := self._inflight.get(flight)) is not None:
            try:
                return codec.loads(await asyncio.shield(pending))
            except _LeaderFailed:
                continue
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            value, data = await load()
        except BaseException:
            future.set_exception(_LeaderFailed())
            future.exception()  # retrieved here, so an unawaited future is not logged
            raise
        else:
            future.set_result(data)
            return value
        finally:
            del self._inflight[flight]
