"""HTTP method and encoding semantics the router and Starlette's gzip leave out.

- `HEAD` is answered wherever `GET` is: FastAPI routes list only the methods they declare,
  so `HeadMiddleware` runs the `GET` and sends its status and headers without the body.
- A 405's `Allow` lists every method of the path: the router stops at the first route whose
  path matches, so `allowed_methods` asks every route.
- A gzip-encoded response is another representation of the same resource, so it must not
  carry the strong ETag of the identity bytes: `GZipMiddleware` weakens it (as nginx does),
  and a 304 answers with the form of the tag the client holds.
"""

from collections.abc import Iterable

from fastapi.routing import RouteContext, iter_route_contexts
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.middleware.gzip import GZipMiddleware as StarletteGZipMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.http.etag import entity_tags

# Types Starlette never compresses (already compressed, or streamed event by event).
_UNCOMPRESSED_TYPES = frozenset(DEFAULT_EXCLUDED_CONTENT_TYPES)
# The order `Allow` lists methods in; any other method follows, sorted.
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _contexts(scope: Scope) -> Iterable[RouteContext]:
    routes: list[BaseRoute] = scope["app"].routes
    return iter_route_contexts(routes)


def _answers(scope: Scope, method: str) -> bool:
    probe = {**scope, "method": method}
    return any(context.matches(probe)[0] is Match.FULL for context in _contexts(scope))


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route answers on this request's path, HEAD wherever GET is."""
    methods: set[str] = set()
    for context in _contexts(scope):
        if context.methods and context.matches(scope)[0] is not Match.NONE:
            methods |= context.methods
    if "GET" in methods:
        methods.add("HEAD")
    known = [method for method in _METHOD_ORDER if method in methods]
    return known + sorted(methods.difference(_METHOD_ORDER))


class HeadMiddleware:
    """Answers `HEAD` on a path only `GET` answers: the GET's status and headers, no body.

    Content-Length stays the GET's, as RFC 9110 9.3.2 allows. Routes that answer HEAD
    themselves (static files) and paths with no GET (a 404 or 405) are left to the router.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or _answers(scope, "HEAD")
            or not _answers(scope, "GET")
        ):
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # A copy: the server reads the method from its own scope to know no body follows.
        get_scope = {**scope, "method": "GET"}
        try:
            await self.app(get_scope, receive, send_headers_only)
        finally:
            # What routing found (the route, for the metrics label) is visible outside.
            scope.update((key, value) for key, value in get_scope.items() if key != "method")


class GZipMiddleware:
    """gzip compression with ETags that tell the encodings apart.

    A client that accepts gzip gets Starlette's compressing responder. Every other response
    passes through here untouched but for the `Vary: Accept-Encoding` that Starlette's
    identity responder would add; that responder costs ~70,000 instructions a request
    (it re-parses headers and content-type exclusions each time), the check here a tenth.
    """

    def __init__(self, app: ASGIApp, *, minimum_size: int) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compressing = StarletteGZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept_encoding = b""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept_encoding = value
                break
        if b"gzip" in accept_encoding:
            await self._compressing(scope, receive, send)
        else:
            await self._identity(scope, receive, send)

    async def _identity(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None

        async def send_identity(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if start is not None:
                if message["type"] == "http.response.body" and self._varies(start, message):
                    MutableHeaders(scope=start).add_vary_header("Accept-Encoding")
                await send(start)
                start = None
            await send(message)

        await self.app(scope, receive, send_identity)
        if start is not None:  # a start that no body followed
            await send(start)

    def _varies(self, start: Message, first_body: Message) -> bool:
        """Whether a gzip-accepting client would have been sent this response compressed."""
        if start["status"] == 206:
            return False
        if len(first_body.get("body", b"")) < self.minimum_size and not first_body.get(
            "more_body", False
        ):
            return False
        content_type = b""
        for name, value in start.get("headers", ()):
            if name == b"content-encoding":
                return False
            if name == b"content-type":
                content_type = value
        media_type = content_type.decode("latin-1").partition(";")[0].strip().lower()
        media_types = {media_type, media_type.partition("/")[0] + "/*"}
        if media_type.startswith("application/grpc+"):
            media_types.add("application/grpc")
        return not media_types & _UNCOMPRESSED_TYPES

    async def _compressing(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_headers = Headers(scope=scope)

        async def send_with_etag(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                etag = headers.get("etag")
                if etag is not None and not etag.startswith("W/"):
                    if headers.get("content-encoding") == "gzip":
                        headers["ETag"] = f"W/{etag}"
                    elif message["status"] == 304 and _holds_weak_form(request_headers, etag):
                        # The client revalidates the gzip representation it holds: the 304
                        # names that one, so caches keep and refresh it.
                        headers["ETag"] = f"W/{etag}"
            await send(message)

        await self.compressing(scope, receive, send_with_etag)


def _holds_weak_form(request_headers: Headers, etag: str) -> bool:
    if "gzip" not in request_headers.get("accept-encoding", ""):
        return False
    tags = entity_tags(request_headers.get("if-none-match", ""))
    return f"W/{etag}" in tags and etag not in tags
