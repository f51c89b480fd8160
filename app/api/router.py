"""Mounts every versioned router under /api/v1."""

from fastapi import APIRouter, Depends

from app.api.v1 import api_keys, audit, auth, dashboard, items, orders, posts, users, webhooks
from app.core.deps import RateLimit
from app.core.errors import error_responses
from app.core.rate_limit import RateLimitExceeded
from app.domains.auth.dependencies import caller_rate_key

# Every API route shares the default limit per caller; some routes add a stricter one.
api_router = APIRouter(
    prefix="/api/v1",
    dependencies=[
        Depends(RateLimit(lambda s: s.rate_limit_default, scope="api", key=caller_rate_key))
    ],
    responses=error_responses(RateLimitExceeded),
)
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(dashboard.router)
api_router.include_router(api_keys.router)
api_router.include_router(items.router)
api_router.include_router(posts.router)
api_router.include_router(orders.router)
api_router.include_router(webhooks.router)
api_router.include_router(audit.router)
