"""Prometheus metrics: the HTTP middleware that records them and the `/metrics` scrape.

Other code increments the counters defined here (cache hits and misses, rate-limit
rejections) rather than defining its own, so every name is listed in one place.

Under gunicorn every worker is a process with its own counters. With
`PROMETHEUS_MULTIPROC_DIR` set (gunicorn.conf.py sets and empties it), prometheus_client
writes each worker's values to files there and a scrape merges them, so any worker answers
for all of them.
"""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Requests no route matched (404s, and those rejected before routing) share one label, so
# scanners probing random paths cannot grow the number of series without bound.
UNMATCHED_ROUTE = "<unmatched>"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Refresh interval of each worker's pool gauges in multiprocess mode, where a scrape only
# reaches the worker that answers it.
POOL_REFRESH_SECONDS = 5.0

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending the last of its response.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being handled now.",
    multiprocess_mode="livesum",
)
DB_POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out_connections",
    "Database connections in use by requests.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "db_pool_size_connections",
    "Database connections the pool keeps open (overflow connections come on top).",
    multiprocess_mode="livesum",
)
CACHE_HITS = Counter("cache_hits", "Cache look-ups answered from the cache.", ["namespace"])
CACHE_MISSES = Counter("cache_misses", "Cache look-ups that fell through.", ["namespace"])
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections", "Requests refused with 429, by limit scope.", ["scope"]
)

# The job log (app.core.outbox), by topic: one series per message type, a handful in all.
OUTBOX_DELIVERED = Counter(
    "outbox_messages_delivered", "Job log messages their handler completed.", ["topic"]
)
OUTBOX_RETRIED = Counter(
    "outbox_messages_retried", "Failed job log attempts scheduled for a retry.", ["topic"]
)
OUTBOX_DEAD = Counter(
    "outbox_messages_dead", "Job log messages given up after their last attempt.", ["topic"]
)
OUTBOX_BACKLOG_AGE = Histogram(
    "outbox_backlog_age_seconds",
    "How long each claimed job log message had been due and waiting.",
    ["topic"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


def multiprocess_mode() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


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


def record_pool_usage(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool
    # Only a queue pool has a size; SQLite's in-memory or null pools report nothing.
    if isinstance(pool, QueuePool):
        DB_POOL_CHECKED_OUT.set(pool.checkedout())
        DB_POOL_SIZE.set(pool.size())


@asynccontextmanager
async def pool_usage_refresh(engine: AsyncEngine) -> AsyncIterator[None]:
    """Keep this worker's pool gauges current while the application runs (multiprocess)."""
    if not multiprocess_mode():
        yield
        return

    async def refresh() -> None:
        while True:
            record_pool_usage(engine)
            await asyncio.sleep(POOL_REFRESH_SECONDS)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text exposition of every metric, merged across workers."""
    engine: AsyncEngine = request.app.state.resources.engine
    record_pool_usage(engine)
    if multiprocess_mode():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
