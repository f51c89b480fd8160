"""The exception handlers that render every error as a problem: domain errors, HTTP errors,
validation errors and an unavailable database, installed once by `install_error_handlers`."""

import logging
from http import HTTPStatus
from typing import Any, cast

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.db_errors import Unavailability, classify
from app.core.errors import DomainError, FieldError, problem_response
from app.core.http import allowed_methods

logger = logging.getLogger(__name__)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(DomainError, exc)
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        type_=exc.type,
        headers=exc.headers,
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
_RETRY_AFTER = {Unavailability.BUSY: "1", Unavailability.DOWN: "5"}
_UNAVAILABLE_DETAIL = {
    Unavailability.BUSY: "The database is busy; retry shortly.",
    Unavailability.DOWN: "The database is unavailable; retry shortly.",
}


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
        headers={"Retry-After": _RETRY_AFTER[reason]},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    # Every shape a database outage takes; the handler tells them from bugs.
    for error in (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
