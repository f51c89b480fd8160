"""Token issue, rotation and revocation (OAuth2 password grant plus refresh tokens)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, status

from app.core.deps import RateLimit
from app.core.errors import error_responses
from app.domains.auth.dependencies import (
    AuthServiceDep,
    CurrentUser,
    get_principal,
    login_rate_key,
)
from app.domains.auth.schemas import RefreshRequest, TokenPair, TokenRequest
from app.domains.auth.service import AuthService

router = APIRouter(prefix="/auth", tags=["auth"])


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
    responses=error_responses(get_principal),
)
async def logout(principal: CurrentUser, auth: AuthServiceDep) -> None:
    await auth.logout(principal)
