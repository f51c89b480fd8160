"""A real HTTP server on 127.0.0.1, in a thread, that receives webhooks and checks them as a
subscriber would: recording each request and answering with the statuses a test scripts."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOOK_PATH = "/hooks/orders"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """The receiver's side of Standard Webhooks: recompute and compare the signature."""
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode()
        expected = base64.b64encode(hmac.new(key, signed + self.body, hashlib.sha256).digest())
        given = [part.removeprefix("v1,") for part in self.headers["webhook-signature"].split()]
        return any(hmac.compare_digest(expected.decode(), signature) for signature in given)


@dataclass
class Receiver:
    port: int
    # Statuses to answer with, in order; 200 once they run out.
    statuses: list[int] = field(default_factory=list)
    location: str | None = None
    # What every answer's body says, and how long each waits before it starts.
    answer: bytes = b"ok"
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"


@contextmanager
def webhook_receiver(
    statuses: list[int] | None = None, *, answer: bytes = b"ok", delay: float = 0.0
) -> Iterator[Receiver]:
    state = Receiver(port=0, statuses=list(statuses or []), answer=answer, delay=delay)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.received.append(
                    Received(
                        path=self.path,
                        headers={name.lower(): value for name, value in self.headers.items()},
                        body=body,
                    )
                )
                status = state.statuses.pop(0) if state.statuses else 200
            time.sleep(state.delay)
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{state.port}/elsewhere")
                self.send_header("Content-Length", str(len(state.answer)))
                self.end_headers()
                self.wfile.write(state.answer)
            except (BrokenPipeError, ConnectionResetError):
                # The sender stopped waiting (a timeout): no one is left to answer.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reports what matters."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
