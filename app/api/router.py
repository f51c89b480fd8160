"""Mounts every versioned router under /api/v1."""

from fastapi import FastAPI

from app.api.v1 import (
    api_keys,
    audit,
    auth,
    dashboard,
    events,
    items,
    mfa,
    orders,
    posts,
    privacy,
    sessions,
    users,
    webhooks,
)
from app.core.errors import error_responses
from app.core.rate_limit import RateLimitExceeded

V1_PREFIX = "/api/v1"
# Every request is matched against the routers in this order, each router's routes tried
# in turn: the busiest paths come first, so they are found after the fewest tries.
V1_ROUTERS = (
    items.router,
    users.router,
    orders.router,
    posts.router,
    auth.token_router,
    auth.router,
    dashboard.router,
    api_keys.router,
    sessions.router,
    mfa.router,
    privacy.router,
    webhooks.router,
    audit.router,
    events.router,
)


def include_v1(app: FastAPI) -> None:
    """Mount the v1 routers on the app itself, not under a router of their own: each level
    of nesting costs every request another walk through its routes.

    Every v1 route is an `ApiRoute`, which spends its caller's default limit once (some
    routes add a stricter limit of their own); its 429 is declared here, once.
    """
    for router in V1_ROUTERS:
        app.include_router(
            router,
            prefix=V1_PREFIX,
            responses=error_responses(RateLimitExceeded),
        )
    # Not routes: the payloads the service sends, for the document's `webhooks`.
    app.webhooks.include_router(webhooks.events)
