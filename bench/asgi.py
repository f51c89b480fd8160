"""The app driven as an ASGI server drives it, in process: no sockets, no HTTP parsing, no
client, so what is counted of a request is the app's own work from the first middleware to
the last byte of the response."""

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

ASGI = {"version": "3.0", "spec_version": "2.4"}
SERVER = ("127.0.0.1", 8000)
CLIENT = ("127.0.0.1", 40000)

Message = dict[str, Any]


class LifespanError(RuntimeError):
    """The app failed to start or to stop."""


class InProcess:
    """The app's lifespan around a block, and requests sent to it one at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # Shared with each request's scope, as uvicorn shares the state the lifespan set.
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "InProcess":
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        self._lifespan = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._lifespan_step("startup")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._lifespan_step("shutdown")
        if self._lifespan is not None:
            await self._lifespan

    async def _lifespan_step(self, step: str) -> None:
        await self._to_app.put({"type": f"lifespan.{step}"})
        answer = await self._from_app.get()
        if answer["type"] != f"lifespan.{step}.complete":
            raise LifespanError(f"{step}: {answer.get('message') or answer['type']}")

    async def request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        """Status and body of one request to `target` (a path with its query string)."""
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": ASGI,
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", f"{SERVER[0]}:{SERVER[1]}".encode()),
                *((name.lower().encode(), value.encode()) for name, value in headers),
            ],
            "client": CLIENT,
            "server": SERVER,
            "state": self.state.copy(),
        }
        finished = asyncio.Event()
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            if pending:
                return pending.pop()
            # Like a client that stays connected: a disconnect only once the response ended.
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        await self.app(scope, receive, send)
        return status, b"".join(chunks)
