from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from app.api.deps import ResourcesDep, SessionDep
from app.core.security import InvalidToken
from app.domains.auth.exceptions import (
    AdminRequired,
    InsufficientScope,
    InvalidAccessToken,
    NotAuthenticated,
)
from app.domains.auth.repository import find_principal
from app.domains.auth.schemas import SCOPE_DESCRIPTIONS, Principal, Scope
from app.domains.auth.service import AuthService

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

# Reads the Authorization header only: tokens in query strings end up in logs and history.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS, auto_error=False
)


async def get_principal(
    security_scopes: SecurityScopes,
    resources: ResourcesDep,
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


async def get_auth_service(session: SessionDep, resources: ResourcesDep) -> AuthService:
    return AuthService(
        session, passwords=resources.passwords, tokens=resources.tokens, settings=resources.settings
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
