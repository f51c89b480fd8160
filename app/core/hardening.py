"""HTTP hardening as pure ASGI middleware: security headers, host check, size limits.

Their own refusals (400 for a host that is not served, 413 for a body that is too large,
431 for headers that are) are problem+json like every other error; they sit inside the
request-id middleware, so those responses carry `X-Request-ID` too.
"""

import asyncio
import sys

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import send_problem

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


class SecurityHeadersMiddleware:
    """Adds the security headers to every response that does not set its own."""

    def __init__(self, app: ASGIApp, *, hsts_seconds: int = 0) -> None:
        self.app = app
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": API_CONTENT_SECURITY_POLICY,
        }
        if hsts_seconds > 0:
            headers["Strict-Transport-Security"] = f"max-age={hsts_seconds}; includeSubDomains"
        # Encoded once: going through MutableHeaders costs every response a scan per header.
        self.raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # A response with its own policy (the docs pages) keeps it.
                present = {name.lower() for name, _ in headers}
                headers.extend(raw for raw in self.raw_headers if raw[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header.partition("]")[0] + "]"
    return host_header.partition(":")[0]


def _host_matches(host: str, pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


class TrustedHostMiddleware:
    """Refuses requests whose Host header names no host this service answers for.

    Patterns are exact names, `*.example.com` for any subdomain, or `*` for anything.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed_hosts = [pattern.lower() for pattern in allowed_hosts]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _hostname(Headers(scope=scope).get("host", "")).lower()
        if any(_host_matches(host, pattern) for pattern in self.allowed_hosts):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(
            send,
            status=400,
            detail="The Host header names a host this service does not serve.",
            instance=scope["path"],
        )


class BodySizeLimitMiddleware:
    """Answers 413 to request bodies over the limit, declared or streamed.

    A declared Content-Length is checked before the application runs; the body is then read
    and dropped (up to the limit again, at least DISCARD_MIN_BYTES) so the 413 reaches a
    proxy that is still sending it, and the connection stays usable. A body larger still is
    answered at once and read on while the sender takes the answer (`_refuse_and_linger`),
    so even then the 413 arrives instead of a reset connection. A chunked body has no
    length up front, so the chunks are counted as the application reads them, and reading
    past the limit raises a 413 `HTTPException`, which the error handlers render.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.discard_bytes = max(DISCARD_MIN_BYTES, max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        detail = f"The request body exceeds the limit of {limit} bytes."
        declared = expect = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length" and declared is None:
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"expect" and expect is None:
                expect = value
        if declared is not None:
            if not declared.isdigit():
                await send_problem(
                    send,
                    status=400,
                    detail="Content-Length is not a number.",
                    instance=scope["path"],
                )
                return
            if int(declared) > limit:
                instance = scope["path"]
                # A client waiting for "100 Continue" has sent nothing and never will.
                if expect is not None and expect.lower() == b"100-continue":
                    close = {"Connection": "close"}
                    await send_problem(
                        send, status=413, detail=detail, instance=instance, headers=close
                    )
                elif await _discard_body(receive, self.discard_bytes, DISCARD_SECONDS):
                    await send_problem(send, status=413, detail=detail, instance=instance)
                else:
                    await _refuse_and_linger(send, receive, detail=detail, instance=instance)
                return
            if not chunked:
                # The server reads exactly the declared length, so no more can arrive.
                await self.app(scope, receive, send)
                return
        elif not chunked:
            # Neither length nor chunks: the request has no body.
            await self.app(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(status_code=413, detail=detail)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except HTTPException as exc:
            # Read outside any route (middleware, a raw ASGI app): answer here instead.
            if exc.status_code != 413 or response_started:
                raise
            await send_problem(send, status=413, detail=detail, instance=scope["path"])


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


async def _refuse_and_linger(send: Send, receive: Receive, *, detail: str, instance: str) -> None:
    """Send the whole 413 while the body is still coming, then read on before closing.

    The answer's last, empty chunk is held back, so the server keeps the connection and reads
    the body while the sender (a proxy relaying a body it already holds) reads the 413 and
    hangs up. Closing on unread bytes instead resets the connection, and the reset can reach
    the sender before the answer: nginx then reports a 502, and marks the replica failed.
    """

    async def hold_open(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "more_body": True}
        await send(message)

    close = {"Connection": "close"}
    await send_problem(hold_open, status=413, detail=detail, instance=instance, headers=close)
    await _discard_body(receive, sys.maxsize, LINGER_SECONDS)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """The size of the header fields as sent: each `name: value` line with its CRLF."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


class HeaderSizeLimitMiddleware:
    """Answers 431 to requests whose header fields together exceed the limit.

    The server's parser (app.core.server) already refuses a request head much larger than
    this before buffering it, which is what protects memory; this check holds the exact
    limit under any server. The connection is closed after the refusal: a client sending
    such headers is broken or hostile, and its next request would be no better.
    """

    def __init__(self, app: ASGIApp, *, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or header_bytes(scope["headers"]) <= self.max_header_bytes:
            await self.app(scope, receive, send)
            return
        await send_problem(
            send,
            status=431,
            detail=f"The request headers exceed the limit of {self.max_header_bytes} bytes.",
            instance=scope["path"],
            headers={"Connection": "close"},
        )
