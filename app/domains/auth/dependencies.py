from typing import Annotated

from fastapi import Depends, Form, Request, Response, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.api.deps import ClientIPDep, ResourcesDep, SessionDep
from app.core.security import InvalidToken
from app.domains.auth.exceptions import (
    AdminRequired,
    InsufficientScope,
    InvalidAccessToken,
    NotAuthenticated,
)
from app.domains.auth.repository import find_principal
from app.domains.auth.schemas import SCOPE_DESCRIPTIONS, Principal, Scope, TokenRequest
from app.domains.auth.service import AuthService

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

# Reads the Authorization header only: tokens in query strings end up in logs and history.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS, auto_error=False
)


async def get_principal(
    security_scopes: SecurityScopes,
    resources: ResourcesDep,
    response: Response,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    if token is None:
        raise NotAuthenticated
    try:
        claims = resources.tokens.verify(token)
    except InvalidToken:
        raise InvalidAccessToken from None
    async with resources.engine.connect() as connection:
        principal = await find_principal(
            connection, session_id=claims.session_id, user_id=claims.user_id, scopes=claims.scopes
        )
    if principal is None:
        raise InvalidAccessToken
    missing = [scope for scope in security_scopes.scopes if scope not in claims.scopes]
    if missing:
        raise InsufficientScope(missing)
    # What one caller sees must never be served to another from a shared cache.
    response.headers["Cache-Control"] = "private, no-store"
    return principal


CurrentUser = Annotated[Principal, Security(get_principal)]
ProfileUser = Annotated[Principal, Security(get_principal, scopes=[Scope.PROFILE])]


async def get_admin(
    principal: Annotated[Principal, Security(get_principal, scopes=[Scope.USERS_ADMIN])],
) -> Principal:
    # The role is read fresh on every request: a demoted admin's older token stops here.
    if not principal.is_admin:
        raise AdminRequired
    return principal


AdminUser = Annotated[Principal, Depends(get_admin)]


async def login_rate_key(ip: ClientIPDep, form: Annotated[TokenRequest, Form()]) -> str:
    # Per address and account: one client cannot guess many passwords for an account, and
    # one busy address (a NAT) does not lock everyone behind it out of every account.
    return f"{ip}|{form.username.lower()}"


async def caller_rate_key(request: Request, resources: ResourcesDep, ip: ClientIPDep) -> str:
    """The user behind a valid bearer token, else the client address.

    Only the signature is checked (no database read): a limit key needs to be stable, not
    authoritative, and the route's own authentication still decides access.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return f"user:{resources.tokens.verify(token).user_id}"
        except InvalidToken:
            pass
    return f"ip:{ip}"


async def get_auth_service(session: SessionDep, resources: ResourcesDep) -> AuthService:
    return AuthService(
        session, passwords=resources.passwords, tokens=resources.tokens, settings=resources.settings
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
