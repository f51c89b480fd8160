"""The HTTP series of app.core.observability.metrics, recorded per request, and the
`/metrics` scrape that serves every series, merged across workers in multiprocess mode."""

import time

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.deps import EngineDep
from app.core.observability.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_FLIGHT,
    multiprocess_mode,
    record_pool_usage,
)

# Requests no route matched (404s, and those rejected before routing) share one label, so
# scanners probing random paths cannot grow the number of series without bound.
UNMATCHED_ROUTE = "<unmatched>"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """The full path template of the route that handled a request, never the raw path.

    A route declared in an included router knows only its own path ("/items/{item_id}");
    the prefixes of the routers it was included through ("/api/v1") live in the
    application's route contexts. They are read once, and again only when a route object
    not seen before handles a request.
    """

    def __init__(self) -> None:
        self._contexts: dict[int, list[RouteContext]] = {}

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED_ROUTE
        contexts = self._contexts.get(id(route))
        if contexts is None and "app" in scope:
            self.read(scope)
            # Remembered even when absent, so an unlisted route costs one read, not one a request.
            contexts = self._contexts.setdefault(id(route), [])
        if not contexts:
            return UNMATCHED_ROUTE
        if len(contexts) > 1:
            # One route included under several prefixes: the inclusion whose path matches.
            contexts = [c for c in contexts if c.matches(scope)[0] is not Match.NONE] or contexts
        template = contexts[0].path_format
        return template if isinstance(template, str) else UNMATCHED_ROUTE

    def read(self, scope: Scope) -> None:
        routes: list[BaseRoute] = scope["app"].routes
        contexts: dict[int, list[RouteContext]] = {}
        for context in iter_route_contexts(routes):
            contexts.setdefault(id(context.original_route), []).append(context)
        self._contexts = contexts


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route_template = RouteTemplates()
        # Each label set's series, looked up once: `labels()` validates and locks on every
        # call. Bounded as the labels are: known methods, route templates, status codes.
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and "app" in scope:
                # Read at start-up, so no request pays for it.
                self.route_template.read(scope)
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
            labels = (method, self.route_template(scope), str(status))
            series = self._series.get(labels)
            if series is None:
                series = HTTP_REQUESTS.labels(*labels), HTTP_REQUEST_DURATION.labels(*labels)
                self._series[labels] = series
            requests, duration = series
            requests.inc()
            duration.observe(time.perf_counter() - started)


async def metrics_endpoint(engine: EngineDep) -> Response:
    """The Prometheus text exposition of every metric, merged across workers."""
    record_pool_usage(engine)
    if multiprocess_mode():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
