from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Form, Request, Response, Security
from fastapi.security import HTTPBearer, OAuth2PasswordBearer, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param

from app.core.deps import (
    ClientIPDep,
    PasswordHasherDep,
    SessionDep,
    SessionmakerDep,
    SettingsDep,
    TokenCodecDep,
    reaches_database,
    uses_platform,
)
from app.core.errors import raises
from app.core.http.clients import client_address
from app.core.resources import Resources
from app.core.security import AccessClaims, InvalidToken, fingerprint
from app.domains.audit.dependencies import AuditTrailDep
from app.domains.auth.api_keys import API_KEY_PREFIX, ApiKeyService, minted_here, record_key_use
from app.domains.auth.exceptions import (
    AdminRequired,
    EmailUnverified,
    InsufficientScope,
    InvalidAccessToken,
    NotAuthenticated,
)
from app.domains.auth.repository import find_key_principal, find_principal
from app.domains.auth.schemas import (
    SCOPE_DESCRIPTIONS,
    PasswordResetRequest,
    Principal,
    Scope,
    TokenRequest,
)
from app.domains.auth.service import AuthService
from app.domains.users.dependencies import AccountLinksDep, UserServiceDep

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

# Reads the Authorization header only: tokens in query strings end up in logs and history.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL, scopes=SCOPE_DESCRIPTIONS, auto_error=False
)
# The same header, described a second time so Swagger's Authorize takes a pasted API key.
api_key_scheme = HTTPBearer(
    scheme_name="APIKey",
    bearerFormat="fsk_...",
    description="An API key (POST /api/v1/users/me/api-keys), sent as `Bearer fsk_...`.",
    auto_error=False,
)


@dataclass(frozen=True, slots=True)
class ApiKeyBearer:
    key_hash: str
    # Carries this service's tag: a key worth its own rate-limit budget.
    minted_here: bool


Bearer = AccessClaims | ApiKeyBearer


@uses_platform
async def get_bearer(platform: Resources, request: Request) -> Bearer | None:
    """The request's bearer credential: an API key's hash, or a verified access token's
    claims; None when absent or invalid.

    A dependency, so FastAPI reads the header once per request however many dependencies
    (the rate-limit key, the principal) need it.
    """
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    settings = platform.settings
    if token.startswith(API_KEY_PREFIX):
        signing_keys = [
            key.get_secret_value() for key in (settings.secret_key, *settings.previous_secret_keys)
        ]
        return ApiKeyBearer(fingerprint(token), minted_here(token, signing_keys))
    try:
        return platform.tokens.verify(token)
    except InvalidToken:
        return None


BearerDep = Annotated[Bearer | None, Depends(get_bearer)]


@raises(NotAuthenticated, InvalidAccessToken, InsufficientScope)
@reaches_database
@uses_platform
async def get_principal(
    platform: Resources,
    security_scopes: SecurityScopes,
    response: Response,
    background: BackgroundTasks,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    _: Annotated[object, Depends(api_key_scheme)],
    bearer: BearerDep,
) -> Principal:
    if token is None:
        raise NotAuthenticated
    if bearer is None:
        raise InvalidAccessToken
    async with platform.reads.connect() as connection:
        if isinstance(bearer, ApiKeyBearer):
            found = await find_key_principal(connection, bearer.key_hash)
            principal = found.principal if found is not None else None
            if found is not None and found.stale_last_use:
                background.add_task(record_key_use, platform.sessionmaker, found.key_id)
        else:
            principal = await find_principal(
                connection,
                session_id=bearer.session_id,
                user_id=bearer.user_id,
                scopes=bearer.scopes,
            )
    if principal is None:
        raise InvalidAccessToken
    missing = [scope for scope in security_scopes.scopes if scope not in principal.scopes]
    if missing:
        raise InsufficientScope(missing)
    # What one caller sees must never be served to another from a shared cache.
    response.headers["Cache-Control"] = "private, no-store"
    return principal


CurrentUser = Annotated[Principal, Security(get_principal)]
ProfileUser = Annotated[Principal, Security(get_principal, scopes=[Scope.PROFILE])]


@raises(get_principal, EmailUnverified)
async def get_writer(
    principal: Annotated[Principal, Security(get_principal)], settings: SettingsDep
) -> Principal:
    """A caller allowed to create content; the scope comes from the alias using this.

    With REQUIRE_VERIFIED_EMAIL, only verified addresses may write. Reads and the account's
    own routes stay open, so an unverified user can still fix the address or verify it.
    """
    if settings.require_verified_email and not principal.email_verified:
        raise EmailUnverified
    return principal


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


async def password_reset_rate_key(body: PasswordResetRequest) -> str:
    # Per address asked about, whoever asks: no mailbox gets flooded with reset links.
    return body.email


async def profile_user_key(principal: ProfileUser) -> str:
    # Per user, for limits on account routes: the same alias as the route, so one lookup.
    return f"user:{principal.id}"


@uses_platform
async def caller_rate_key(platform: Resources, request: Request, bearer: BearerDep) -> str:
    """The user behind a valid access token, the API key this service minted, else the
    client address.

    No database read: a limit key needs to be stable, not authoritative, and the route's
    own authentication still decides access. An invented key gets the address's budget.
    """
    if isinstance(bearer, AccessClaims):
        return f"user:{bearer.user_id}"
    if isinstance(bearer, ApiKeyBearer) and bearer.minted_here:
        return f"key:{bearer.key_hash}"
    return f"ip:{client_address(request, platform.settings.trusted_proxies)}"


async def get_auth_service(
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    passwords: PasswordHasherDep,
    tokens: TokenCodecDep,
    settings: SettingsDep,
    links: AccountLinksDep,
    audit: AuditTrailDep,
    profiles: UserServiceDep,
) -> AuthService:
    return AuthService(
        session,
        sessionmaker=sessionmaker,
        passwords=passwords,
        tokens=tokens,
        refresh_token_days=settings.refresh_token_expire_days,
        links=links,
        audit=audit,
        profiles=profiles,
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_api_key_service(
    session: SessionDep, settings: SettingsDep, audit: AuditTrailDep
) -> ApiKeyService:
    return ApiKeyService(session, signing_key=settings.secret_key.get_secret_value(), audit=audit)


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]
