"""How uvicorn serves the app, under `make serve` and under gunicorn.

- The HTTP protocols bound the request head before it is buffered: uvicorn's httptools
  protocol buffers headers of any size (32 MB were accepted), and its h11 protocol answers
  an oversized head with a plain-text 400. Both answer a head over
  MAX_REQUEST_HEADER_BYTES plus a request-line allowance with a 431 problem and close the
  connection; the edge (app.core.http.edge) holds the exact header limit below that.
- Proxy headers are the app's business: the rate limiter trusts `X-Forwarded-For` only
  from TRUSTED_PROXIES, and uvicorn's own handling (which trusts 127.0.0.1 by default)
  would rewrite the client address before that rule sees it.
- The `Server` header is off; `uvicorn --no-server-header` covers `make serve`, and
  gunicorn builds uvicorn's config from its own settings, so the worker class says it.
- Gunicorn's own log lines use the project's formatter, so every line has one format.
"""

import logging
from typing import Any, ClassVar

import h11
from gunicorn.glogging import Logger as _GunicornLogger
from pydantic import ValidationError
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol
from uvicorn_worker import UvicornWorker as _UvicornWorker

from app.core.config import Settings, get_settings
from app.core.errors import PROBLEM_JSON, Problem
from app.core.observability.context import REQUEST_ID_HEADER, choose_request_id
from app.core.observability.logging import JsonFormatter, TextFormatter

# Room for the request line on top of the header limit, as nginx's large header buffers
# give; a longer URL is refused with the headers.
MAX_REQUEST_LINE_BYTES = 8 * 1024
logger = logging.getLogger("uvicorn.error")


def request_head_limit(settings: Settings) -> int:
    return settings.max_request_header_bytes + MAX_REQUEST_LINE_BYTES


def _too_large(target: bytes, limit: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of the 431 answered before the app could see the request."""
    request_id = choose_request_id(None)
    body = Problem(
        type="about:blank",
        title="Request Header Fields Too Large",
        status=431,
        detail=f"The request line and headers exceed the limit of {limit} bytes.",
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


class HttpToolsProtocol(_HttpToolsProtocol):
    """uvicorn's httptools protocol, with the request head bounded.

    httptools gives no size hook, so the bytes received while a head is incomplete are
    counted after each read: the buffer never holds more than the limit and one read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit = request_head_limit(get_settings())
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        in_head = self._in_head
        super().data_received(data)
        if not (in_head and self._in_head):
            return
        self._head_bytes += len(data)
        if self._head_bytes > self._head_limit and not self.transport.is_closing():
            logger.warning("Request head over %d bytes: answered 431.", self._head_limit)
            headers, body = _too_large(self.url, self._head_limit)
            lines = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
            lines += [name + b": " + value + b"\r\n" for name, value in headers]
            lines += [
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            ]
            self.transport.write(b"".join([*lines, b"\r\n", body]))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()


class _BoundedConnection(h11.Connection):
    """An h11 connection that remembers the status its last protocol error called for."""

    refusal: int | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            self.refusal = error.error_status_hint
            raise


class H11Protocol(_H11Protocol):
    """uvicorn's h11 protocol, with h11's head bound set from the settings and reported
    as the 431 it is (uvicorn answers every protocol error with a 400)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit = request_head_limit(get_settings())
        self._bounded = _BoundedConnection(h11.SERVER, max_incomplete_event_size=self._head_limit)
        self.conn = self._bounded

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
