"""The pages the emailed links open: `/reset-password` and `/verify-email`.

Each does what the API's own route does (`/api/v1/auth/password-reset/confirm`,
`/api/v1/auth/verify-email`), through the same services, and answers in HTML: a form, a
success page, or a page that says what went wrong with the status the API would give.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.responses import HTMLResponse

from app.core.errors import DomainError
from app.core.http.routes import ApiRoute
from app.domains.auth.dependencies import AuthServiceDep
from app.domains.auth.schemas import PasswordResetConfirm
from app.domains.users.dependencies import AccountLinksDep, UserServiceDep
from app.domains.users.exceptions import InvalidAccountToken
from app.domains.users.models import TokenPurpose
from app.domains.users.schemas import (
    MAX_PASSWORD_LENGTH,
    MAX_TOKEN_LENGTH,
    MIN_PASSWORD_LENGTH,
    Password,
)
from app.pages.rendering import render_page


class PageRoute(ApiRoute):
    """A page's route: it spends the default limit like any route, and answers every
    failure as a page (an invalid link, a limit) instead of a problem document."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def rendering_failures(request: Request) -> Response:
            try:
                return await handler(request)
            # A link without a token, or with one no link ever had, is an invalid link.
            except (InvalidAccountToken, RequestValidationError):
                return render_page(
                    "invalid_link", status_code=400, detail=InvalidAccountToken.detail
                )
            except DomainError as error:
                page = render_page(
                    "error", status_code=error.status_code, title=error.title, detail=error.detail
                )
                page.headers.update(error.headers)
                return page

        return rendering_failures


router = APIRouter(route_class=PageRoute, include_in_schema=False)

TokenQuery = Annotated[str, Query(min_length=1, max_length=MAX_TOKEN_LENGTH)]
TokenField = Annotated[str, Form(min_length=1, max_length=MAX_TOKEN_LENGTH)]
# Checked in the handler, so that a password the rules refuse gets the form back with the
# reason, not an invalid-link page.
PasswordField = Annotated[str, Form()]

_PASSWORD = TypeAdapter(Password)


def _password_problem(password: str, confirmation: str) -> str | None:
    """Why the form's new password cannot be set; None when it can."""
    try:
        _PASSWORD.validate_python(password)
    except ValidationError as error:
        kind = error.errors()[0]["type"]
        if kind == "string_too_short":
            return f"The password needs at least {MIN_PASSWORD_LENGTH} characters."
        if kind == "string_too_long":
            return f"The password may have at most {MAX_PASSWORD_LENGTH} characters."
        if kind == "value_error":
            return "The password needs at least one digit."
        return "The password contains a character that is not allowed."
    if password != confirmation:
        return "The two passwords are not the same."
    return None


def _reset_form(token: str, *, problem: str | None = None) -> HTMLResponse:
    return render_page(
        "reset_password",
        status_code=200 if problem is None else 422,
        token=token,
        problem=problem,
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
    )


@router.get("/reset-password")
async def reset_password_form(token: TokenQuery, links: AccountLinksDep) -> HTMLResponse:
    """The form for a new password, when the link's token is live; spends nothing."""
    await links.check(token, TokenPurpose.PASSWORD_RESET)
    return _reset_form(token)


@router.post("/reset-password")
async def reset_password(
    token: TokenField,
    new_password: PasswordField,
    new_password_confirm: PasswordField,
    links: AccountLinksDep,
    auth: AuthServiceDep,
) -> HTMLResponse:
    await links.check(token, TokenPurpose.PASSWORD_RESET)
    problem = _password_problem(new_password, new_password_confirm)
    if problem is not None:
        return _reset_form(token, problem=problem)
    await auth.reset_password(PasswordResetConfirm(token=token, new_password=new_password))
    return render_page("password_changed")


@router.get("/verify-email")
async def verify_email_form(token: TokenQuery, links: AccountLinksDep) -> HTMLResponse:
    """One "Verify" button: link scanners that follow GETs spend nothing."""
    await links.check(token, TokenPurpose.EMAIL_VERIFICATION)
    return render_page("verify_email", token=token)


@router.post("/verify-email")
async def verify_email(token: TokenField, users: UserServiceDep) -> HTMLResponse:
    await users.verify_email(token)
    return render_page("email_verified")
