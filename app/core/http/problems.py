"""Every error rendered as an RFC 9457 problem: the exception handlers for domain errors,
HTTP errors, validation errors and an unavailable database, installed once by
`install_error_handlers`, and `send_problem` for answers from ASGI middleware, outside any
route."""

import logging
from http import HTTPStatus
from typing import Any, cast

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from app.core.db.errors import Unavailability, classify
from app.core.errors import PROBLEM_JSON, DomainError, FieldError, Problem
from app.core.http.methods import allowed_methods
from app.core.observability.context import REQUEST_ID_HEADER, request_id_var

logger = logging.getLogger(__name__)

# The scope key of members a route adds to whatever problem its request ends in (the RFC 6749
# `error` of the token endpoint): set by the route as the error passes, read by every handler.
PROBLEM_MEMBERS = "app.problem_members"


def problem_response(
    request: Request,
    *,
    status: int,
    title: str | None = None,
    detail: str,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    """Render a problem; `extensions` adds RFC 9457 extension members, and so does the
    route, for every problem of its requests (`PROBLEM_MEMBERS`)."""
    extensions = (extensions or {}) | request.scope.get(PROBLEM_MEMBERS, {})
    problem = Problem(
        type=type_,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=request_id_var.get(),
        errors=errors,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True) | extensions,
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


async def send_problem(
    send: Send,
    *,
    status: int,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with a problem straight from ASGI middleware, outside any route."""
    request_id = request_id_var.get()
    body = Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id,
    ).model_dump_json(exclude_none=True)
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if request_id is not None:
        raw_headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
    raw_headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in (headers or {}).items()
    )
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body.encode()})


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(DomainError, exc)
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_=exc.type,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        # The router names only the methods of the first route matching the path.
        headers["Allow"] = ", ".join(allowed_methods(request.scope))
    return problem_response(
        request,
        status=exc.status_code,
        detail=detail or _default_detail(exc.status_code, request),
        headers=headers or None,
    )


def _default_detail(status: int, request: Request) -> str:
    if status == 404:
        return f"No resource at {request.url.path}."
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}."
    return HTTPStatus(status).description or HTTPStatus(status).phrase


def _field_error(error: Any) -> FieldError:
    return FieldError(
        loc=[part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
        msg=str(error.get("msg", "")),
        type=str(error.get("type", "")),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = [_field_error(error) for error in exc.errors()]
    return problem_response(
        request,
        status=422,
        type_="urn:problem-type:validation-error",
        detail=f"The request is invalid: {len(errors)} error(s).",
        errors=errors,
    )


# Seconds a client should wait before retrying: a lock frees up in moments, while a restarting
# or failing-over database takes a few seconds to accept connections again.
_RETRY_AFTER = {Unavailability.BUSY: "1", Unavailability.DOWN: "5", Unavailability.OVERLOADED: "1"}
_UNAVAILABLE_DETAIL = {
    Unavailability.BUSY: "The database is busy; retry shortly.",
    Unavailability.DOWN: "The database is unavailable; retry shortly.",
    Unavailability.OVERLOADED: "The service is overloaded; retry after Retry-After.",
}
# A worker whose connections are all busy is overloaded, as its admission control says too.
OVERLOADED = "urn:problem-type:overloaded"


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A database that is down, silent, restarting, out of connections or (SQLite) locked by
    # another writer is a condition the client can retry, not a crash. Anything else that
    # reaches here is a bug and goes on to the last-resort handler.
    reason = classify(exc)
    if reason is None:
        raise exc
    logger.warning(
        "database %s on %s %s (%s: %s)",
        reason,
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    return problem_response(
        request,
        status=503,
        detail=_UNAVAILABLE_DETAIL[reason],
        type_=OVERLOADED if reason is Unavailability.OVERLOADED else "about:blank",
        headers={"Retry-After": _RETRY_AFTER[reason]},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    # Every shape a database outage takes, the driver's own included (the hot reads and the
    # one-call writes use asyncpg without SQLAlchemy); the handler tells them from bugs.
    outages = (
        SQLAlchemyError,
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    )
    for error in outages:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
