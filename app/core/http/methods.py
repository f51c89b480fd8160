"""HTTP method and encoding semantics the router and Starlette's gzip leave out.

- `HEAD` is answered wherever `GET` is: FastAPI routes list only the methods they declare,
  so the edge runs the `GET` (where `answers` says no route takes the HEAD itself) and sends
  its status and headers without the body.
- A 405's `Allow` lists every method of the path: the router stops at the first route whose
  path matches, so `allowed_methods` asks every route.
- A gzip-encoded response is another representation of the same resource, so it must not
  carry the strong ETag of the identity bytes: `GZipResponder` weakens it (as nginx does),
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


def answers(scope: Scope, method: str) -> bool:
    """Whether some route answers `method` on this request's path."""
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


# The scope key by which the edge tells `GZipResponder` that the client accepts gzip.
GZIP = "app.gzip"


class GZipResponder:
    """gzip compression with ETags that tell the encodings apart, for clients that accept it
    (the edge says so in the scope); every other response passes through untouched.

    Starlette's compressing responder does the compression; the identity path costs nothing
    here, and the edge asks `would_compress` to know whether such a response varies on
    Accept-Encoding (Starlette's own identity responder costs ~70,000 instructions a request:
    it re-parses headers and content-type exclusions each time).
    """

    def __init__(self, app: ASGIApp, *, minimum_size: int) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compressing = StarletteGZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(GZIP):
            await self._compressing(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def would_compress(self, start: Message, first_body: Message) -> bool:
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
