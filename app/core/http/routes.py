"""The route class of the API: every request spends one unit of its caller's default limit.

Exactly once, and without a dependency of its own for FastAPI to resolve: a route whose
dependencies authenticate the caller leaves it to that dependency, which spends it per user
once it knows who is calling (a revoked credential spends its address's instead); any other
route spends it per client address here, before its handler runs.
"""

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.core.deps import AUTHENTICATING_DEPENDENCIES
from app.core.http.limits import spend_by_address
from app.core.http.problems import PROBLEM_MEMBERS


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


ProblemMembers = Callable[[Exception], Mapping[str, Any]]


def adding_problem_members(members: ProblemMembers) -> type[ApiRoute]:
    """An `ApiRoute` whose every problem, whatever raised it (a validation error, a limit, a
    domain error), also carries `members(error)`: for endpoints whose clients read a standard
    of their own beside RFC 9457, as OAuth2 clients read RFC 6749's `error`."""

    class MemberAddingRoute(ApiRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def adding_members(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as error:
                    request.scope[PROBLEM_MEMBERS] = dict(members(error))
                    raise

            return adding_members

    return MemberAddingRoute
