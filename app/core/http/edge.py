"""The edge: every request's one pass through the platform before and after the routes.

In one pure-ASGI middleware, one wrapper of `send` per request, with headers encoded once:

- a request id (the client's well-formed `X-Request-ID`, or a new one) on every response and
  in every log line; the access log, with the client address and the worker's pid;
- refusals before anything runs: a missing or repeated `Host`, or one this service does not
  serve (400; probes and scrapes, which address a pod by its IP, are exempt from the name
  check), headers over MAX_REQUEST_HEADER_BYTES (431, connection closed), a Content-Length
  that is not a number (400) or over MAX_REQUEST_BODY_BYTES (413, after the body is drained
  so a proxy still sending it reads the answer), a streamed body past the limit (413);
- `GET /health` answered here, touching nothing;
- admission control (app.core.http.admission): 503 `overloaded` rather than a long queue,
  for every request but probes, scrapes and event streams (`STREAM_PATHS`);
- `HEAD` wherever `GET` is answered, `If-None-Match` revalidation (304), gzip for clients
  that accept it, with ETags that tell the encodings apart (app.core.http.methods);
- the security headers, `RateLimit-*` from the request's closest verdict, and a last-resort
  500 problem that reveals nothing (the traceback goes to the log under the request id);
- the HTTP metrics, counted in process (app.core.observability.metrics.TALLY).

Pure ASGI rather than `BaseHTTPMiddleware` (~140 us a request), and one layer rather than
a stack of them: each layer is another call and another `send` wrapper for every request.
"""

import asyncio
import itertools
import json
import logging
import os
import secrets
import sys
import time
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import PROBLEM_JSON, Problem
from app.core.http.admission import Admission, Overloaded
from app.core.http.clients import resolve_client_ip
from app.core.http.etag import IF_NONE_MATCH, Revalidating
from app.core.http.limits import VERDICT
from app.core.http.methods import GZIP, GZipResponder, answers
from app.core.http.metrics import RouteTemplates
from app.core.http.problems import OVERLOADED
from app.core.observability.context import REQUEST_ID_HEADER, request_id_var, well_formed_request_id
from app.core.observability.metrics import TALLY, Flusher
from app.core.rate_limit import Verdict

logger = logging.getLogger("app.request")

# Nothing an API response contains should ever run, load or be framed in a browser.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# A body refused from its Content-Length is still read, up to this much past the limit and
# for this long, before the 413 goes out. Closing on unread bytes makes the kernel reset the
# connection, and a proxy still sending them (nginx) reports its own 502, not the 413.
DISCARD_MIN_BYTES = 4 * 1024 * 1024
DISCARD_SECONDS = 5.0
# A body past those bounds gets its 413 at once, and the connection is read for up to this
# long more before it closes: long enough for a proxy to read the answer and hang up itself.
LINGER_SECONDS = 5.0
# Probes and scrapes address a pod by its IP, which no ALLOWED_HOSTS names; they render no
# links, so the host name they send cannot poison anything.
HOST_CHECK_EXEMPT = frozenset({"/health", "/health/ready", "/metrics"})
# Responses that stay open for as long as their client listens (live events): one would
# hold an admission slot for hours and teach the admission's wait estimate that requests
# take hours, so the worker would soon refuse everyone. They wait on nothing a request
# queues for (each reads the database in short transactions) and are bounded per user.
STREAM_PATHS = frozenset({"/api/v1/events"})
# Never refused for overload: a liveness probe failing under load would get a busy
# worker restarted, and a scrape is how the load is seen.
ADMISSION_EXEMPT = HOST_CHECK_EXEMPT | STREAM_PATHS
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_PID = os.getpid()


class _Refusal(Exception):
    def __init__(
        self, status: int, detail: str, *, close: bool = False, drain: int = 0, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.close, self.drain = status, detail, close, drain
        self.problem_type = extra.get("type", "about:blank")
        self.headers: dict[str, str] = extra.get("headers", {})


class Edge:
    """The one middleware of the app (module docstring); the app's other layers sit inside."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.settings = settings
        self.gzip = GZipResponder(Revalidating(app), minimum_size=settings.gzip_minimum_size)
        cors = _cors(settings)
        self.inner: ASGIApp = CORSMiddleware(self.gzip, **cors) if cors else self.gzip
        self.refusals: ASGIApp = CORSMiddleware(_send_refusal, **cors) if cors else _send_refusal
        self.hosts = [pattern.lower() for pattern in settings.allowed_hosts]
        self.check_hosts = self.hosts != ["*"]
        self.max_header_bytes = settings.max_request_header_bytes
        self.max_body_bytes = settings.max_request_body_bytes
        self.admission = Admission(
            settings.max_concurrent_requests, settings.request_queue_timeout_ms / 1000
        )
        TALLY.watch_in_flight(lambda: self.admission.running)
        self.routes = RouteTemplates()
        security = {
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "content-security-policy": API_CONTENT_SECURITY_POLICY,
        }
        if settings.hsts_seconds > 0:
            security["strict-transport-security"] = (
                f"max-age={settings.hsts_seconds}; includeSubDomains"
            )
        self.security_headers = _encoded(security)
        self.health = json.dumps(
            {"status": "healthy", "version": settings.version}, separators=(",", ":")
        ).encode()
        self.ids = _RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's life: the metrics flushed while it runs, and for the last time before
        its shutdown is reported complete (the server may end the process right after)."""
        self.routes.read(scope)
        flusher = Flusher()

        async def send_and_flush(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                flusher.start()
            elif message["type"].startswith("lifespan.shutdown."):
                flusher.stop()
            await send(message)

        await self.inner(scope, receive, send_and_flush)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request = _Head.read(scope["headers"])
        incoming = request.request_id
        request_id = incoming if well_formed_request_id(incoming) else self.ids()
        context = request_id_var.set(request_id)
        out = _Out(self, scope, send, request_id, identity=b"gzip" not in request.accept_encoding)
        admitted = False
        route: str | None = None
        try:
            self.refuse_early(scope, request)
            path, method = scope["path"], scope["method"]
            if path == "/health" and method in ("GET", "HEAD") and not request.origin:
                await out.health(self.health, head=method == "HEAD")
                route = "/health"
                return
            if path not in ADMISSION_EXEMPT:
                if not self.admission.enter_now():
                    await self.admission.enter()
                admitted = True
            await self.dispatch(scope, receive, out, request)
        except _Refusal as refusal:
            scope["app.refusal"] = refusal
            if refusal.drain and not await _discard_body(receive, refusal.drain, DISCARD_SECONDS):
                refusal.close = True
                await self.refuse_and_linger(scope, receive, out)
            else:
                await self.refusals(scope, receive, out.send)
        except Overloaded as overloaded:
            scope["app.refusal"] = _Refusal(
                503,
                "The service is overloaded; retry after Retry-After.",
                type=OVERLOADED,
                headers={"Retry-After": str(overloaded.retry_after)},
            )
            await self.refusals(scope, receive, out.send)
        except HTTPException as error:
            # A body past the limit, read outside any route (a raw ASGI app): answered here.
            if error.status_code != 413 or out.started:
                raise
            scope["app.refusal"] = _Refusal(413, str(error.detail))
            await self.refusals(scope, receive, out.send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if out.started:
                raise
            scope["app.refusal"] = _Refusal(
                500, "The server failed to complete the request; the error has been logged."
            )
            await _send_refusal(scope, receive, out.send)
        finally:
            if admitted:
                self.admission.leave(started)
            await out.flush()
            self.record(scope, route or self.routes(scope), out.status, started)
            request_id_var.reset(context)

    async def refuse_and_linger(self, scope: Scope, receive: Receive, out: "_Out") -> None:
        """Send the whole refusal while a body is still coming, then read on before closing.

        The answer's last, empty chunk is held back, so the server keeps the connection and
        reads the body while the sender (a proxy relaying a body it already holds) reads the
        answer and hangs up. Closing on unread bytes instead resets the connection, and the
        reset can reach the sender before the answer: nginx then reports a 502, and marks the
        replica failed.
        """

        async def hold_open(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "more_body": True}
            await out.send(message)

        await self.refusals(scope, receive, hold_open)
        await _discard_body(receive, sys.maxsize, LINGER_SECONDS)
        await out.send({"type": "http.response.body", "body": b"", "more_body": False})

    def refuse_early(self, scope: Scope, request: "_Head") -> None:
        if request.hosts > 1 or (request.hosts == 0 and scope.get("http_version") == "1.1"):
            raise _Refusal(400, "A request names exactly one Host.")
        if (
            self.check_hosts
            and scope["path"] not in HOST_CHECK_EXEMPT
            and not _host_allowed(request.host, self.hosts)
        ):
            raise _Refusal(400, "The Host header names a host this service does not serve.")
        if request.header_bytes > self.max_header_bytes:
            raise _Refusal(
                431,
                f"The request headers exceed the limit of {self.max_header_bytes} bytes.",
                close=True,
            )
        declared = request.content_length
        if declared is None:
            return
        if not declared.isdigit():
            raise _Refusal(400, "Content-Length is not a number.")
        if int(declared) > self.max_body_bytes:
            # A client waiting for "100 Continue" has sent nothing and never will.
            waiting = request.expect.lower() == b"100-continue"
            raise _Refusal(
                413,
                f"The request body exceeds the limit of {self.max_body_bytes} bytes.",
                close=waiting,
                drain=0 if waiting else max(DISCARD_MIN_BYTES, self.max_body_bytes),
            )

    async def dispatch(self, scope: Scope, receive: Receive, out: "_Out", request: "_Head") -> None:
        if request.chunked:
            receive = _bounded(receive, self.max_body_bytes)
        if b"gzip" in request.accept_encoding:
            scope[GZIP] = True
        send = out.send
        if request.if_none_match is not None and scope["method"] in ("GET", "HEAD"):
            scope[IF_NONE_MATCH] = request.if_none_match.decode("latin-1")
        if scope["method"] == "HEAD" and not answers(scope, "HEAD") and answers(scope, "GET"):
            out.head = True
            # A copy: the server reads the method from its own scope to know no body follows.
            inner = {**scope, "method": "GET"}
            out.scope = inner
            try:
                await self.inner(inner, receive, send)
            finally:
                # What routing found (the route, for the metrics label) is seen outside.
                scope.update((key, value) for key, value in inner.items() if key != "method")
            return
        await self.inner(scope, receive, send)

    def record(self, scope: Scope, route: str, status: int, started: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        elapsed = time.perf_counter() - started
        TALLY.request(method, route, str(status), elapsed)
        # Checked first: the record's fields cost more to build than a skipped call.
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": self.client(scope),
                    "pid": _PID,
                },
            )

    def client(self, scope: Scope) -> str:
        peer = scope.get("client")
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        return resolve_client_ip(
            peer[0] if peer else None, forwarded, self.settings.trusted_proxies
        )


class _Head:
    """What the edge needs of a request's headers, read in one pass over them."""

    __slots__ = (
        "accept_encoding",
        "chunked",
        "content_length",
        "expect",
        "header_bytes",
        "host",
        "hosts",
        "if_none_match",
        "origin",
        "request_id",
    )

    def __init__(self) -> None:
        self.accept_encoding = b""
        self.chunked = False
        self.content_length: bytes | None = None
        self.expect = b""
        self.header_bytes = 0
        self.host = b""
        self.hosts = 0
        self.if_none_match: bytes | None = None
        self.origin = False
        self.request_id: str | None = None

    @classmethod
    def read(cls, headers: list[tuple[bytes, bytes]]) -> "_Head":
        head = cls()
        size = 0
        for name, value in headers:
            # Each `name: value` line with its CRLF, as sent.
            size += len(name) + len(value) + 4
            if name == b"host":
                head.hosts += 1
                head.host = value
            elif name == b"accept-encoding":
                head.accept_encoding = value
            elif name == b"x-request-id" and head.request_id is None:
                head.request_id = value.decode("latin-1")
            elif name == b"content-length" and head.content_length is None:
                head.content_length = value
            elif name == b"transfer-encoding":
                head.chunked = True
            elif name == b"if-none-match":
                head.if_none_match = value
            elif name == b"expect":
                head.expect = value
            elif name == b"origin":
                head.origin = True
        head.header_bytes = size
        return head


class _Out:
    """The request's `send`: every response start gets the edge's headers, once."""

    def __init__(
        self, edge: Edge, scope: Scope, send: Send, request_id: str, *, identity: bool
    ) -> None:
        self.edge = edge
        self.scope = scope
        self.raw_send = send
        self.request_id = (_REQUEST_ID, request_id.encode("latin-1"))
        self.identity = identity
        self.status = 500
        self.started = False
        self.head = False
        self.held: Message | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message["headers"] = self.headers(message.get("headers", ()))
            if self.identity:
                # Whether gzip would have applied shows in the first body: hold the start.
                self.held = message
                return
        elif message["type"] == "http.response.body":
            if self.held is not None:
                start, self.held = self.held, None
                if self.edge.gzip.would_compress(start, message):
                    start["headers"].append((b"vary", b"Accept-Encoding"))
                await self.raw_send(start)
            if self.head and message.get("body"):
                message = {**message, "body": b""}
        await self.raw_send(message)

    async def flush(self) -> None:
        """Send a start that no body followed."""
        if self.held is not None:
            start, self.held = self.held, None
            await self.raw_send(start)

    def headers(self, headers: Any) -> list[tuple[bytes, bytes]]:
        out = [header for header in headers if header[0].lower() != _REQUEST_ID]
        present = {name.lower() for name, _ in out}
        out.append(self.request_id)
        # A response with its own policy (the docs pages) keeps it.
        out.extend(header for header in self.edge.security_headers if header[0] not in present)
        verdict: Verdict | None = self.scope.get(VERDICT)
        if verdict is not None and b"ratelimit-limit" not in present:
            out.extend(_encoded(verdict.headers()))
        return out

    async def health(self, body: bytes, *, head: bool) -> None:
        self.identity = False
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": b"" if head else body})


async def _send_refusal(scope: Scope, receive: Receive, send: Send) -> None:
    """The problem for the refusal in the scope, as an ASGI app (so CORS can wrap it)."""
    refusal: _Refusal = scope["app.refusal"]
    body = (
        Problem(
            type=refusal.problem_type,
            title=HTTPStatus(refusal.status).phrase,
            status=refusal.status,
            detail=refusal.detail,
            instance=scope["path"],
            request_id=request_id_var.get(),
        )
        .model_dump_json(exclude_none=True)
        .encode()
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *_encoded(refusal.headers),
    ]
    if refusal.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _bounded(receive: Receive, limit: int) -> Receive:
    """`receive` for a body of unknown length: past `limit` bytes it refuses with a 413."""
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                # An HTTPException, so the route reading the body answers it as a problem.
                raise HTTPException(
                    413, detail=f"The request body exceeds the limit of {limit} bytes."
                )
        return message

    return counting


async def _discard_body(receive: Receive, budget: int, seconds: float) -> bool:
    """Read and drop a request body; True when all of it arrived within the bounds."""
    read = 0
    try:
        async with asyncio.timeout(seconds):
            while read <= budget:
                message = await receive()
                if message["type"] != "http.request":
                    return False
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
    except TimeoutError:
        return False
    return False


def _host_allowed(host_header: bytes, patterns: list[str]) -> bool:
    host = host_header.decode("latin-1").lower()
    name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    return any(
        pattern == "*"
        or name == pattern
        or (pattern.startswith("*.") and name.endswith(pattern[1:]))
        for pattern in patterns
    )


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


def _cors(settings: Settings) -> dict[str, Any] | None:
    if not settings.cors_origins:
        return None
    return {
        "allow_origins": settings.cors_origins,
        "allow_credentials": settings.cors_allow_credentials,
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "If-None-Match",
            "X-Request-ID",
        ],
        "expose_headers": [
            "ETag",
            "Idempotent-Replayed",
            "Location",
            "Retry-After",
            "X-Request-ID",
        ],
        "max_age": 600,
    }


class _RequestIds:
    """Request ids unique across workers and replicas without a random draw per request: a
    random prefix per process and a counter, 32 hex characters like a UUID."""

    def __init__(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"
