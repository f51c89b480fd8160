"""Domain errors and the RFC 9457 problem they become: the one shape of every error.

Domain errors subclass the status-carrying classes here (`class OutOfStock(Conflict)`), so a
service raises a business failure and the single handler renders it (app.core.http.problems);
`@raises` declares them where they are raised and `error_responses` lists them for the OpenAPI
document. Nothing here knows HTTP beyond a status number: services import it freely.
"""

import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description="URI reference identifying the problem type")
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request path that produced the problem")
    request_id: str | None
    errors: list[FieldError] | None = Field(default=None, description="validation errors only")


class DomainError(Exception):
    """An expected failure that carries its own HTTP status and problem type."""

    status_code: ClassVar[int] = 500
    type: ClassVar[str] = "about:blank"
    title: ClassVar[str] = "Internal Server Error"
    detail: str = "The server could not complete the request."

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        if detail is not None:
            self.detail = detail
        self.headers = headers or {}
        # RFC 9457 extension members the problem adds to the standard ones.
        self.extensions: dict[str, Any] = {}
        super().__init__(self.detail)


class BadRequest(DomainError):
    status_code = 400
    title = "Bad Request"


class Unauthorized(DomainError):
    status_code = 401
    title = "Unauthorized"
    detail = "Authentication is required."

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        # RFC 9110: a 401 must say which authentication scheme to use.
        super().__init__(detail, headers=headers or {"WWW-Authenticate": "Bearer"})


class Forbidden(DomainError):
    status_code = 403
    title = "Forbidden"
    detail = "You are not allowed to do this."


class NotFound(DomainError):
    status_code = 404
    title = "Not Found"
    detail = "The resource does not exist."


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    title = "Content Too Large"


class BusinessRuleViolation(DomainError):
    """Well-formed input that a business rule rejects."""

    status_code = 422
    title = "Unprocessable Content"


class TooManyRequests(DomainError):
    status_code = 429
    title = "Too Many Requests"
    detail = "Rate limit exceeded; retry later."


class ServiceUnavailable(DomainError):
    status_code = 503
    title = "Service Unavailable"


ErrorSource = type[DomainError] | Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])
_RAISES = "__raises__"


def raises(*sources: ErrorSource) -> Callable[[F], F]:
    """Declare, where they are raised, the domain errors a service method or dependency
    can raise; a source may also be another declared callable whose errors pass through.

    Routes then list the callables they use in `error_responses(...)` instead of repeating
    the errors, so the OpenAPI document follows the code.
    """

    def mark(func: F) -> F:
        func.__dict__[_RAISES] = declared_errors(*sources)
        return func

    return mark


def declared_errors(*sources: ErrorSource) -> tuple[type[DomainError], ...]:
    errors: dict[type[DomainError], None] = {}
    for source in sources:
        if isinstance(source, type) and issubclass(source, DomainError):
            errors[source] = None
            continue
        declared = getattr(source, _RAISES, None)
        if declared is None:
            raise TypeError(f"{source!r} declares no errors: decorate it with @raises(...)")
        errors.update(dict.fromkeys(declared))
    return tuple(errors)


def error_responses(*sources: ErrorSource) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors of these error classes and callables."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in declared_errors(*sources):
        entry = responses.setdefault(
            error.status_code,
            {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": ""},
        )
        if error.title not in entry["description"].split(" / "):
            entry["description"] = " / ".join(filter(None, [entry["description"], error.title]))
    return responses
