"""What a limit says of one request, how it is parsed, and the refusal it becomes."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse

from app.core.config import Settings
from app.core.errors import TooManyRequests
from app.core.setting_types import check_rate_limit

# A literal ("5/minute") or a function of the settings (`lambda s: s.rate_limit_login`).
LimitSource = str | Callable[[Settings], str]


class RateLimitExceeded(TooManyRequests):
    type = "urn:problem-type:rate-limit-exceeded"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }


@lru_cache(maxsize=64)
def parse_limit(value: str) -> RateLimitItem:
    return parse(check_rate_limit(value))
