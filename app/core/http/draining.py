"""How a long response learns that its server has begun a graceful stop.

uvicorn waits for the responses in progress before it finishes stopping, and asks them
nothing: a response that never ends on its own (a live event stream) would hold the worker
until its graceful timeout ran out and it was killed, cutting the stream without its end.
Such a response takes `draining(scope)` and ends when it is set; the server's protocols
(app.core.http.server) set it when the server stops taking requests.
"""

import asyncio
from collections.abc import MutableMapping
from typing import Any

_DRAINING = "app.draining"


def draining(scope: MutableMapping[str, Any]) -> asyncio.Event:
    """The event set when the server serving this request begins to stop."""
    event: asyncio.Event | None = scope.get(_DRAINING)
    if event is None:
        event = scope[_DRAINING] = asyncio.Event()
    return event


def drain(scope: MutableMapping[str, Any] | None) -> None:
    """Tell the response in progress on a connection that its server is stopping."""
    event: asyncio.Event | None = None if scope is None else scope.get(_DRAINING)
    if event is not None:
        event.set()
