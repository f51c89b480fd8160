from typing import Annotated

from fastapi import Depends, Form, Request, Response, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param

from app.core.deps import (
    ClientIPDep,
    EngineDep,
    PasswordHasherDep,
    SessionDep,
    SessionmakerDep,
    SettingsDep,
    TokenCodecDep,
)
from app.core.errors import raises
from app.core.security import AccessClaims, InvalidToken
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


async def get_bearer_claims(request: Request, tokens: TokenCodecDep) -> AccessClaims | None:
    """The verified claims of the request's bearer token; None when absent or invalid.

    A dependency, so FastAPI verifies the token once per request however many
    dependencies (the rate-limit key, the principal) need it.
    """
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return tokens.verify(token)
    except InvalidToken:
        return None


BearerClaims = Annotated[AccessClaims | None, Depends(get_bearer_claims)]


@raises(NotAuthenticated, InvalidAccessToken, InsufficientScope)
async def get_principal(
    security_scopes: SecurityScopes,
    engine: EngineDep,
    response: Response,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    claims: BearerClaims,
) -> Principal:
    if token is None:
        raise NotAuthenticated
    if claims is None:
        raise InvalidAccessToken
    async with engine.connect() as connection:
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


@raises(get_principal, AdminRequired)
async def get_admin(principal: Annotated[Principal, Security(get_principal)]) -> Principal:
    """An administrator; the scope the route needs comes from the alias using this.

    The role is read fresh on every request, so a demoted admin's older token, which still
    carries admin scopes, stops here.
    """
    if not principal.is_admin:
        raise AdminRequired
    return principal


AdminUser = Annotated[Principal, Security(get_admin, scopes=[Scope.USERS_ADMIN])]


async def login_rate_key(ip: ClientIPDep, form: Annotated[TokenRequest, Form()]) -> str:
    # Per address and account: one client cannot guess many passwords for an account, and
    # one busy address (a NAT) does not lock everyone behind it out of every account.
    return f"{ip}|{form.username}"


async def caller_rate_key(claims: BearerClaims, ip: ClientIPDep) -> str:
    """The user behind a valid bearer token, else the client address.

    Only the signature is checked (no database read): a limit key needs to be stable, not
    authoritative, and the route's own authentication still decides access.
    """
    return f"user:{claims.user_id}" if claims is not None else f"ip:{ip}"


async def get_auth_service(
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    passwords: PasswordHasherDep,
    tokens: TokenCodecDep,
    settings: SettingsDep,
) -> AuthService:
    return AuthService(
        session,
        sessionmaker=sessionmaker,
        passwords=passwords,
        tokens=tokens,
        refresh_token_days=settings.refresh_token_expire_days,
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
