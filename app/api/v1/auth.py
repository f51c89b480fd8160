"""Token issue, rotation and revocation (OAuth2 password grant plus refresh tokens), and the
links emailed to an account: password reset and email verification."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, status

from app.core.errors import error_responses
from app.core.http.limits import RateLimit
from app.core.http.routes import ApiRoute
from app.core.schemas import Accepted
from app.domains.auth.dependencies import (
    AuthServiceDep,
    CurrentUser,
    get_principal,
    login_rate_key,
    password_reset_rate_key,
)
from app.domains.auth.schemas import (
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    TokenPair,
    TokenRequest,
)
from app.domains.auth.service import AuthService
from app.domains.users.dependencies import UserServiceDep
from app.domains.users.schemas import EmailVerification
from app.domains.users.service import UserService

router = APIRouter(prefix="/auth", tags=["auth"], route_class=ApiRoute)

# The one answer to a reset request, whether or not the address has an account.
RESET_ACCEPTED = Accepted(
    detail="If an account uses this email, a link to reset its password is on its way."
)


def _never_store(response: Response) -> None:
    # RFC 6749 5.1: responses carrying tokens must not be cached anywhere.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post(
    "/token",
    summary="Log in with email and password (OAuth2 password grant)",
    responses=error_responses(AuthService.login),
    dependencies=[
        Depends(RateLimit(lambda s: s.rate_limit_login, scope="auth-token", key=login_rate_key))
    ],
)
async def issue_token(
    form: Annotated[TokenRequest, Form()], response: Response, auth: AuthServiceDep
) -> TokenPair:
    _never_store(response)
    return await auth.login(form)


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
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an email address with the emailed token",
    responses=error_responses(UserService.verify_email),
)
async def verify_email(body: EmailVerification, users: UserServiceDep) -> None:
    await users.verify_email(body.token)
