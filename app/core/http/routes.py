"""The route class of the API: every request spends one unit of its caller's default limit.

Exactly once, and without a dependency of its own for FastAPI to resolve: a route whose
dependencies authenticate the caller leaves it to that dependency, which spends it per user
once it knows who is calling (a revoked credential spends its address's instead); any other
route spends it per client address here, before its handler runs.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.core.deps import AUTHENTICATING_DEPENDENCIES
from app.core.http.limits import spend_by_address


def authenticates(dependant: Dependant) -> bool:
    """Whether a dependency at any depth authenticates the caller."""
    return any(
        sub.call in AUTHENTICATING_DEPENDENCIES or authenticates(sub)
        for sub in dependant.dependencies
    )


class ApiRoute(APIRoute):
    """A route under /api/v1 (every v1 router is built with `route_class=ApiRoute`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if authenticates(self.dependant):
            return handler

        async def limited(request: Request) -> Response:
            await spend_by_address(request)
            return await handler(request)

        return limited
