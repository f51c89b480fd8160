"""How uvicorn serves the app, under `make serve` and under gunicorn.

- The HTTP protocols bound the request head before it is buffered: uvicorn's httptools
  protocol buffers headers of any size (32 MB were accepted), and its h11 protocol answers
  an oversized head with a plain-text 400. Both answer a head over
  MAX_REQUEST_HEADER_BYTES plus a request-line allowance with a 431 problem and close the
  connection; the edge (app.core.http.edge) holds the exact header limit below that.
- Proxy headers are the app's business: the rate limiter trusts `X-Forwarded-For` only
  from TRUSTED_PROXIES, and uvicorn's own handling (which trusts 127.0.0.1 by default)
  would rewrite the client address before that rule sees it.
- Slow clients are bounded (REQUEST_HEAD_TIMEOUT_SECONDS, REQUEST_BODY_TIMEOUT_SECONDS,
  KEEP_ALIVE_TIMEOUT_SECONDS): uvicorn times only the idle gap after a response, so a
  connection that sends nothing, or a head or body a byte at a time, would otherwise stay
  open for ever (slowloris). A head must be complete within its timeout of the connection
  or of its first byte, a body must not pause longer than its timeout, and an idle
  connection closes after the keep-alive timeout. A timer never fires while the server
  itself has stopped reading (the app is not consuming a body yet), and none is armed for
  a request whose head arrives whole, so the common path costs nothing.
- The `Server` header is off; `uvicorn --no-server-header` covers `make serve`, and
  gunicorn builds uvicorn's config from its own settings, so the worker class says it.
- Gunicorn's own log lines use the project's formatter, so every line has one format.
"""

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from gunicorn.glogging import Logger as _GunicornLogger
from pydantic import ValidationError
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker as _UvicornWorker

from app.core.config import Settings, get_settings
from app.core.errors import PROBLEM_JSON, Problem
from app.core.http.draining import drain
from app.core.observability.context import REQUEST_ID_HEADER, choose_request_id
from app.core.observability.logging import JsonFormatter, TextFormatter

# Room for the request line on top of the header limit, as nginx's large header buffers
# give; a longer URL is refused with the headers.
MAX_REQUEST_LINE_BYTES = 8 * 1024
logger = logging.getLogger("uvicorn.error")


def request_head_limit(settings: Settings) -> int:
    return settings.max_request_header_bytes + MAX_REQUEST_LINE_BYTES


def _refusal(
    status: int, title: str, detail: str, target: bytes
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a problem answered before the app could see the request."""
    request_id = choose_request_id(None)
    body = Problem(
        type="about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=target.partition(b"?")[0].decode("latin-1"),
        request_id=request_id,
    ).model_dump_json(exclude_none=True)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
    ]
    return headers, body.encode()


def _too_large(target: bytes, limit: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of the 431 answered before the app could see the request."""
    detail = f"The request line and headers exceed the limit of {limit} bytes."
    return _refusal(431, "Request Header Fields Too Large", detail, target)


def _raw_response(
    status_line: bytes, headers: list[tuple[bytes, bytes]], default_headers: list[Any], body: bytes
) -> bytes:
    lines = [status_line + b"\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in [*headers, *default_headers]]
    return b"".join([*lines, b"\r\n", body])


class _ReadDeadlines:
    """The slow-client bounds both protocols share (see the module's docstring).

    The protocol calls `_await_head()` when it waits for a request head that has not come
    whole, `_head_complete(has_body)` when it has, `_body_received()` for each piece of a
    body and `_body_complete()` at its end.
    """

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    flow: FlowControl
    server_state: ServerState
    timeout_keep_alive: int

    def _init_deadlines(self) -> None:
        settings = get_settings()
        self._head_timeout = settings.request_head_timeout_seconds
        self._body_timeout = settings.request_body_timeout_seconds
        # Replaces uvicorn's own (--timeout-keep-alive, gunicorn's --keep-alive): the
        # service's settings are the one place these bounds are set.
        self.timeout_keep_alive = settings.keep_alive_timeout_seconds
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes_seen = False

    def _arm(self, seconds: float, expire: Callable[[], None]) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, self._expire, seconds, expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, seconds: float, expire: Callable[[], None]) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # The server stopped reading, not the client sending: wait for it again.
            self._arm(seconds, expire)
            return
        expire()

    def _await_head(self, *, bytes_seen: bool) -> None:
        """Wait for a request head, no longer than the head timeout from now."""
        self._head_bytes_seen = bytes_seen
        if self._deadline is None:
            self._arm(self._head_timeout, self._head_timed_out)

    def _head_complete(self, *, has_body: bool) -> None:
        if has_body:
            self._arm(self._body_timeout, self._body_timed_out)
        else:
            self._disarm()

    def _body_received(self) -> None:
        self._arm(self._body_timeout, self._body_timed_out)

    def _body_complete(self) -> None:
        self._disarm()

    def _head_timed_out(self) -> None:
        if self._head_bytes_seen:
            headers, body = _refusal(
                408,
                "Request Timeout",
                f"The request line and headers did not arrive within {self._head_timeout:g} s.",
                b"",
            )
            status = b"HTTP/1.1 408 Request Timeout"
            default = self.server_state.default_headers
            self.transport.write(_raw_response(status, headers, default, body))
        # A connection that never sent a byte is simply closed, as an idle one is.
        self.transport.close()

    def _body_timed_out(self) -> None:
        # The app is reading the body: closing tells it the client is gone.
        self.transport.close()


class _Draining:
    """A graceful stop tells the response in progress (app.core.http.draining), so one that
    would never end by itself ends in time for the worker to exit."""

    cycle: Any

    def shutdown(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            drain(self.cycle.scope)
        super().shutdown()  # type: ignore[misc]


def _declares_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip(b"0 ")):
            return True
    return False


class HttpToolsProtocol(_Draining, _ReadDeadlines, _HttpToolsProtocol):
    """uvicorn's httptools protocol, with the request head bounded in size and time and
    the body in the time between its pieces.

    httptools gives no size hook, so the bytes received while a head is incomplete are
    counted after each read: the buffer never holds more than the limit and one read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit = request_head_limit(get_settings())
        self._head_bytes = 0
        self._in_head = True
        self._init_deadlines()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head(bytes_seen=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head = self._in_head
        super().data_received(data)
        if self._in_head or self.cycle is None or self.cycle.response_complete:
            # Inside a head that has not come whole, or between requests (a bare CRLF).
            self._await_head(bytes_seen=True)
        if not (in_head and self._in_head):
            return
        self._head_bytes += len(data)
        if self._head_bytes > self._head_limit and not self.transport.is_closing():
            logger.warning("Request head over %d bytes: answered 431.", self._head_limit)
            headers, body = _too_large(self.url, self._head_limit)
            status = b"HTTP/1.1 431 Request Header Fields Too Large"
            default = self.server_state.default_headers
            self.transport.write(_raw_response(status, headers, default, body))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        self._head_complete(has_body=_declares_body(self.headers))

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_received()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_complete()


class _BoundedConnection(h11.Connection):
    """An h11 connection that remembers the status its last protocol error called for and
    tells `on_event` of each event it parses."""

    refusal: int | None = None
    on_event: Callable[[Any], None] | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as error:
            self.refusal = error.error_status_hint
            raise
        if self.on_event is not None:
            self.on_event(event)
        return event


class H11Protocol(_Draining, _ReadDeadlines, _H11Protocol):
    """uvicorn's h11 protocol, with h11's head bound set from the settings and reported
    as the 431 it is (uvicorn answers every protocol error with a 400), and the same
    bounds on slow clients as the httptools protocol."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit = request_head_limit(get_settings())
        self._bounded = _BoundedConnection(h11.SERVER, max_incomplete_event_size=self._head_limit)
        self._bounded.on_event = self._parsed
        self.conn = self._bounded
        self._init_deadlines()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head(bytes_seen=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._bounded.their_state is h11.IDLE:
            # Waiting for a request head that has not come whole.
            self._await_head(bytes_seen=True)

    def _parsed(self, event: Any) -> None:
        if isinstance(event, h11.Request):
            self._head_complete(has_body=_declares_body(list(event.headers)))
        elif isinstance(event, h11.Data):
            self._body_received()
        elif isinstance(event, h11.EndOfMessage):
            self._body_complete()

    def send_400_response(self, msg: str) -> None:
        if self._bounded.refusal != 431:
            super().send_400_response(msg)
            return
        pending, _ = self._bounded.trailing_data
        target = pending.split(b"\r\n", 1)[0].split(b" ")[1:2]
        headers, body = _too_large(target[0] if target else b"", self._head_limit)
        response = h11.Response(
            status_code=431, headers=headers, reason=b"Request Header Fields Too Large"
        )
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self._bounded.send(event))
        self.transport.close()


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **_UvicornWorker.CONFIG_KWARGS,
        "http": HttpToolsProtocol,
        "server_header": False,
        "proxy_headers": False,
    }

    def _install_sigquit_handler(self) -> None:
        """Also stop gracefully on SIGHUP, which gunicorn sends the old workers of a reload.

        uvicorn-worker leaves SIGHUP at its default, which ends the process on the spot: its
        requests in flight would be cut, and what it had counted in process for the metrics
        (app.core.observability.metrics.TALLY) lost. SIGTERM is the graceful stop.
        """
        super()._install_sigquit_handler()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, os.kill, os.getpid(), signal.SIGTERM)


class GunicornLogger(_GunicornLogger):  # type: ignore[misc]
    """Gunicorn's logger with the project's formatter: JSON lines in production."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        try:
            json_lines = get_settings().json_logs
        except ValidationError:
            # Settings that do not validate stop the start (gunicorn.conf.py), in one line.
            return
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
