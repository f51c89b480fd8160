"""Token issue, rotation and revocation (OAuth2 password grant plus refresh tokens), and the
links emailed to an account: password reset and email verification."""

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, status
from fastapi.exceptions import RequestValidationError

from app.core.errors import DomainError, error_responses
from app.core.http.limits import RateLimit
from app.core.http.routes import ApiRoute, adding_problem_members
from app.core.schemas import Accepted
from app.domains.auth.dependencies import (
    AuthServiceDep,
    CurrentUser,
    UserAgentDep,
    get_principal,
    login_rate_key,
    password_reset_rate_key,
)
from app.domains.auth.schemas import (
    MfaLogin,
    PasswordResetCheck,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    TokenPair,
    TokenRequest,
)
from app.domains.auth.service import AuthService
from app.domains.users.dependencies import AccountLinksDep, UserServiceDep
from app.domains.users.models import TokenPurpose
from app.domains.users.schemas import EmailVerification
from app.domains.users.service import AccountLinks, UserService


def oauth2_error(error: Exception) -> Mapping[str, str]:
    """RFC 6749 section 5.2's members for an error of the token endpoint, so OAuth2 client
    libraries understand the problem as the error response they expect."""
    if isinstance(error, RequestValidationError):
        fields = {str(part) for item in error.errors() for part in item.get("loc", ())}
        code = "unsupported_grant_type" if "grant_type" in fields else "invalid_request"
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:])
        return {"error": code, "error_description": f"{where}: {first.get('msg', 'invalid')}"}
    if isinstance(error, DomainError):
        return {
            "error": getattr(error, "oauth_error", "invalid_request"),
            "error_description": error.detail,
        }
    return {"error": "invalid_request", "error_description": "The request could not be served."}


router = APIRouter(prefix="/auth", tags=["auth"], route_class=ApiRoute)
# The token endpoint, whose clients read RFC 6749's members beside the problem's.
token_router = APIRouter(
    prefix="/auth", tags=["auth"], route_class=adding_problem_members(oauth2_error)
)

# The one answer to a reset request, whether or not the address has an account.
RESET_ACCEPTED = Accepted(
    detail="If an account uses this email, a link to reset its password is on its way."
)


def _never_store(response: Response) -> None:
    # RFC 6749 5.1: responses carrying tokens must not be cached anywhere.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@token_router.post(
    "/token",
    summary="Log in with email and password, or refresh (OAuth2 password and refresh grants)",
    description="`grant_type=password` (the default) with `username` (your email) and "
    "`password`; `grant_type=refresh_token` with `refresh_token` rotates it exactly as "
    "`/auth/refresh` does. With two-factor login on, the right password answers 401 "
    "`mfa-required` carrying an `mfa_token` for `/auth/token/mfa`. Every error also carries "
    "RFC 6749's `error` and `error_description`.",
    responses=error_responses(AuthService.grant),
    dependencies=[
        Depends(RateLimit(lambda s: s.rate_limit_login, scope="auth-token", key=login_rate_key))
    ],
)
async def issue_token(
    form: Annotated[TokenRequest, Form()],
    response: Response,
    auth: AuthServiceDep,
    user_agent: UserAgentDep,
) -> TokenPair:
    _never_store(response)
    return await auth.grant(form, user_agent=user_agent)


@token_router.post(
    "/token/mfa",
    summary="Complete a login with two-factor login on: the mfa_token and a code",
    responses=error_responses(AuthService.login_with_code),
    dependencies=[Depends(RateLimit(lambda s: s.rate_limit_mfa, scope="auth-token-mfa"))],
)
async def issue_token_with_code(
    body: MfaLogin, response: Response, auth: AuthServiceDep, user_agent: UserAgentDep
) -> TokenPair:
    _never_store(response)
    return await auth.login_with_code(body, user_agent=user_agent)


@router.post(
    "/refresh",
    summary="Trade a refresh token for a new pair; the old one is spent",
    responses=error_responses(AuthService.refresh),
)
async def refresh_token(
    body: RefreshRequest, response: Response, auth: AuthServiceDep
) -> TokenPair:
    _never_store(response)
    return await auth.refresh(body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this session: its access and refresh tokens stop working at once",
    responses=error_responses(get_principal, AuthService.logout),
)
async def logout(principal: CurrentUser, auth: AuthServiceDep) -> None:
    await auth.logout(principal)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Email a password reset link; the answer is the same for unknown emails",
    dependencies=[
        Depends(RateLimit(lambda s: s.rate_limit_password_reset, scope="password-reset-ip")),
        Depends(
            RateLimit(
                lambda s: s.rate_limit_password_reset,
                scope="password-reset-email",
                key=password_reset_rate_key,
            )
        ),
    ],
    responses={202: {"content": {"application/json": {"example": RESET_ACCEPTED.model_dump()}}}},
)
async def request_password_reset(body: PasswordResetRequest, auth: AuthServiceDep) -> Accepted:
    await auth.request_password_reset(body.email)
    return RESET_ACCEPTED


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with the emailed token; every session is signed out",
    responses=error_responses(AuthService.reset_password),
)
async def confirm_password_reset(body: PasswordResetConfirm, auth: AuthServiceDep) -> None:
    await auth.reset_password(body)


@router.post(
    "/password-reset/check",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Whether a reset token would be accepted now; nothing is spent",
    responses=error_responses(AccountLinks.check),
)
async def check_password_reset(body: PasswordResetCheck, links: AccountLinksDep) -> None:
    await links.check(body.token, TokenPurpose.PASSWORD_RESET)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an email address with the emailed token",
    responses=error_responses(UserService.verify_email),
)
async def verify_email(body: EmailVerification, users: UserServiceDep) -> None:
    await users.verify_email(body.token)
