"""Rate limits: what a limit says of a request (`verdict`), the exact moving windows the
strict limits keep in Redis (`exact`), and the default limit every API request spends,
counted in each worker against leases of the shared count (`leased`)."""

from app.core.rate_limit.exact import RateLimiter
from app.core.rate_limit.leased import LeasedLimiter
from app.core.rate_limit.verdict import (
    LimitSource,
    RateLimitExceeded,
    Verdict,
    parse_limit,
)

__all__ = [
    "LeasedLimiter",
    "LimitSource",
    "RateLimitExceeded",
    "RateLimiter",
    "Verdict",
    "parse_limit",
]
