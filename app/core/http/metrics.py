"""The route template the HTTP series are labelled with, and the `/metrics` scrape that
serves every series, merged across workers in multiprocess mode."""

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.core.deps import EngineDep
from app.core.observability.metrics import TALLY, multiprocess_mode, record_pool_usage

# Requests no route matched (404s, and those rejected before routing) share one label, so
# scanners probing random paths cannot grow the number of series without bound.
UNMATCHED_ROUTE = "<unmatched>"


class RouteTemplates:
    """The full path template of the route that handled a request, never the raw path.

    A route declared in an included router knows only its own path ("/items/{item_id}");
    the prefixes of the routers it was included through ("/api/v1") live in the
    application's route contexts. They are read once, and again only when a route object
    not seen before handles a request. Starlette's own routes (the OpenAPI document, the
    docs pages) name no route in the scope, only their endpoint, which finds them too.
    """

    def __init__(self) -> None:
        self._contexts: dict[int, list[RouteContext]] = {}

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route") or scope.get("endpoint")
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
            endpoint = getattr(context.original_route, "endpoint", None)
            if endpoint is not None:
                contexts.setdefault(id(endpoint), []).append(context)
        self._contexts = contexts


async def metrics_endpoint(engine: EngineDep) -> Response:
    """The Prometheus text exposition of every metric, merged across workers."""
    TALLY.flush()
    record_pool_usage(engine)
    if multiprocess_mode():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
