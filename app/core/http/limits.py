"""Rate limits as requests meet them: the default limit every API request spends once, the
stricter `RateLimit(...)` dependencies, and the headers that report what is left.

A request's verdicts are kept in its scope, and the edge writes the one closest to running
out as `RateLimit-*` headers on whatever response goes out, a model, a `Response` or an error;
a refusal is the 429 problem with `Retry-After`.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.deps import client_ip, platform_of, uses_platform
from app.core.http.clients import client_address
from app.core.observability.metrics import RATE_LIMIT_REJECTIONS
from app.core.rate_limit import LimitSource, RateLimitExceeded, Verdict, parse_limit
from app.core.resources import Resources

# The scope key under which a request's closest verdict waits for the edge.
VERDICT = "app.rate_limit"
DEFAULT_SCOPE = "api"

RateLimitKey = Callable[..., Awaitable[str]]


def report_verdict(
    verdict: Verdict, limit: str, *, scope: str, request_scope: MutableMapping[str, Any]
) -> None:
    """Refuse a request over its limit, or keep the verdict for the response's headers."""
    if not verdict.allowed:
        RATE_LIMIT_REJECTIONS.labels(scope).inc()
        retry_after = max(1, verdict.reset_after)
        raise RateLimitExceeded(
            f"Rate limit of {limit} exceeded; retry in {retry_after} s.",
            headers=verdict.headers() | {"Retry-After": str(retry_after)},
        )
    # With several limits on one request, the one closest to running out is reported.
    reported: Verdict | None = request_scope.get(VERDICT)
    if reported is None or verdict.remaining < reported.remaining:
        request_scope[VERDICT] = verdict


async def spend_default_limit(
    platform: Resources, request_scope: MutableMapping[str, Any], identity: str
) -> None:
    """Spend one unit of the caller's default limit (RATE_LIMIT_DEFAULT), or refuse."""
    settings = platform.settings
    if not settings.rate_limit_enabled:
        return
    limit = settings.rate_limit_default
    verdict = await platform.default_limiter.hit(parse_limit(limit), identity)
    report_verdict(verdict, limit, scope=DEFAULT_SCOPE, request_scope=request_scope)


async def spend_by_address(request: Request) -> None:
    """The default limit of a caller known only by its address."""
    platform = platform_of(request)
    address = client_address(request, platform.settings.trusted_proxies)
    await spend_default_limit(platform, request.scope, f"ip:{address}")


def RateLimit(  # noqa: N802 - reads as the dependency it builds: Depends(RateLimit(...))
    limit: LimitSource, *, scope: str, key: RateLimitKey = client_ip
) -> Callable[..., Awaitable[None]]:
    """A dependency holding requests to an exact limit per key within a scope, in Redis.

    For the strict limits (logging in, registering, placing orders): every worker and replica
    agrees on each hit. `limit` is a literal ("5/minute") or a function of the settings
    (`lambda settings: settings.rate_limit_login`), read on each request so an app built from
    other settings gets its own limits. `key` is any dependency returning a string (the client
    IP by default; a user id, or IP and username for a login form). `scope` separates limits
    that share a key.
    """
    if isinstance(limit, str):
        parse_limit(limit)

    @uses_platform
    async def check_rate_limit(
        platform: Resources, request: Request, identity: Annotated[str, Depends(key)]
    ) -> None:
        if not platform.settings.rate_limit_enabled:
            return
        value = limit if isinstance(limit, str) else limit(platform.settings)
        verdict = await platform.rate_limiter.hit(parse_limit(value), scope, identity)
        report_verdict(verdict, value, scope=scope, request_scope=request.scope)

    return check_rate_limit
