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
    authenticates,
    reaches_database,
    uses_platform,
)
from app.core.errors import raises
from app.core.http.clients import client_address
from app.core.http.limits import spend_default_limit
from app.core.resources import Resources
from app.core.security import InvalidToken, SecretBox, fingerprint
from app.domains.audit.dependencies import AuditTrailDep
from app.domains.auth.api_keys import API_KEY_PREFIX, ApiKeyService, record_key_use
from app.domains.auth.exceptions import (
    AdminRequired,
    EmailUnverified,
    InsufficientScope,
    InvalidAccessToken,
    NotAuthenticated,
)
from app.domains.auth.mfa import MfaService
from app.domains.auth.repository import find_key_principal, find_principal
from app.domains.auth.schemas import (
    SCOPE_DESCRIPTIONS,
    PasswordResetRequest,
    Principal,
    Scope,
    TokenRequest,
)
from app.domains.auth.service import AuthService
from app.domains.auth.sessions import SessionService
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


def _bearer_token(request: Request) -> str | None:
    """The credential of `Authorization: Bearer ...`, an access token or an API key."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    return token if scheme.lower() == "bearer" and token else None


async def _find_principal(
    platform: Resources, token: str, background: BackgroundTasks
) -> Principal | None:
    """The live caller behind a credential, in one indexed query; None when there is none."""
    if token.startswith(API_KEY_PREFIX):
        found = await find_key_principal(platform.reads, fingerprint(token))
        if found is None:
            return None
        if found.stale_last_use:
            background.add_task(record_key_use, platform.sessionmaker, found.key_id)
        return found.principal
    try:
        claims = platform.tokens.verify(token)
    except InvalidToken:
        return None
    return await find_principal(
        platform.reads, session_id=claims.session_id, user_id=claims.user_id, scopes=claims.scopes
    )


@raises(NotAuthenticated, InvalidAccessToken, InsufficientScope)
@authenticates(oauth2_scheme, api_key_scheme)
@reaches_database
@uses_platform
async def get_principal(
    platform: Resources,
    security_scopes: SecurityScopes,
    request: Request,
    response: Response,
    background: BackgroundTasks,
) -> Principal:
    """The authenticated caller, who has the scopes the route asks for.

    One dependency for FastAPI to resolve on every authenticated request: it reads the
    credential, finds the caller in one query, and spends the caller's default limit, per
    user once the credential proves live, per address when it does not (so a revoked or
    invented credential spends no one's budget but its sender's).
    """
    token = _bearer_token(request)
    principal = await _find_principal(platform, token, background) if token else None
    caller = (
        f"user:{principal.id}"
        if principal is not None
        else f"ip:{client_address(request, platform.settings.trusted_proxies)}"
    )
    await spend_default_limit(platform, request.scope, caller)
    if token is None:
        raise NotAuthenticated
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
    if form.refresh_token is not None and form.grant_type == "refresh_token":
        # A refresh guesses no password, and each token works once: per token, the limit
        # never holds back a client that refreshes as it should.
        return f"refresh|{fingerprint(form.refresh_token)}"
    return f"{ip}|{form.username}"


async def user_agent(request: Request) -> str | None:
    """The client's User-Agent, which names a session in its owner's list."""
    return request.headers.get("User-Agent")


UserAgentDep = Annotated[str | None, Depends(user_agent)]


async def password_reset_rate_key(body: PasswordResetRequest) -> str:
    # Per address asked about, whoever asks: no mailbox gets flooded with reset links.
    return body.email


async def profile_user_key(principal: ProfileUser) -> str:
    # Per user, for limits on account routes: the same alias as the route, so one lookup.
    return f"user:{principal.id}"


async def get_mfa_service(
    session: SessionDep, sessionmaker: SessionmakerDep, settings: SettingsDep, audit: AuditTrailDep
) -> MfaService:
    return MfaService(
        session,
        sessionmaker=sessionmaker,
        box=SecretBox.from_settings(settings),
        audit=audit,
        issuer=settings.project_name,
    )


MfaServiceDep = Annotated[MfaService, Depends(get_mfa_service)]


async def get_auth_service(
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    passwords: PasswordHasherDep,
    tokens: TokenCodecDep,
    settings: SettingsDep,
    links: AccountLinksDep,
    audit: AuditTrailDep,
    profiles: UserServiceDep,
    mfa: MfaServiceDep,
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
        mfa=mfa,
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_api_key_service(
    session: SessionDep, settings: SettingsDep, audit: AuditTrailDep
) -> ApiKeyService:
    return ApiKeyService(session, audit=audit, most_per_user=settings.max_api_keys_per_user)


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]


async def get_session_service(session: SessionDep, audit: AuditTrailDep) -> SessionService:
    return SessionService(session, audit=audit)


SessionServiceDep = Annotated[SessionService, Depends(get_session_service)]
