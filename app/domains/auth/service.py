import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import utcnow
from app.core.security import PasswordHasher, TokenCodec, fingerprint, new_opaque_token
from app.domains.auth.exceptions import (
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
)
from app.domains.auth.repository import AuthSessionRepository
from app.domains.auth.schemas import ROLE_SCOPES, Principal, TokenPair, TokenRequest
from app.domains.users.repository import UserRepository


class AuthService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        passwords: PasswordHasher,
        tokens: TokenCodec,
        settings: Settings,
    ) -> None:
        self.users = UserRepository(session)
        self.sessions = AuthSessionRepository(session)
        self.passwords = passwords
        self.tokens = tokens
        self.refresh_lifetime = timedelta(days=settings.refresh_token_expire_days)

    async def login(self, form: TokenRequest) -> TokenPair:
        user = await self.users.get_by_email(form.username)
        # Verified even for an unknown email (against a dummy hash) so timing is the same.
        valid, new_hash = await self.passwords.verify(
            form.password, user.hashed_password if user else None
        )
        if user is None or not valid or not user.is_active:
            raise InvalidCredentials
        if new_hash is not None:
            user.hashed_password = new_hash
        allowed = ROLE_SCOPES[user.role]
        requested = frozenset(form.scope.split())
        scopes = allowed & requested if requested else allowed
        session_id = uuid.uuid4().hex
        await self.sessions.open(session_id=session_id, user_id=user.id, scopes=scopes)
        return await self._issue(user_id=user.id, session_id=session_id, scopes=scopes)

    async def refresh(self, refresh_token: str) -> TokenPair:
        token_hash = fingerprint(refresh_token)
        session_id = await self.sessions.spend_refresh_token(token_hash)
        if session_id is None:
            # A known but spent token means it was stolen or replayed: end the whole family,
            # including whatever pair was issued when it was first used (RFC 9700 4.14.2).
            replayed_in = await self.sessions.session_of_token(token_hash)
            if replayed_in is not None:
                await self.sessions.revoke(replayed_in)
                raise RefreshTokenReused
            raise InvalidRefreshToken
        auth_session = await self.sessions.get(session_id)
        user = await self.users.get(auth_session.user_id) if auth_session else None
        if auth_session is None or auth_session.revoked_at is not None or user is None:
            raise InvalidRefreshToken
        if not user.is_active:
            raise InvalidRefreshToken
        scopes = frozenset(auth_session.scopes.split()) & ROLE_SCOPES[user.role]
        return await self._issue(user_id=user.id, session_id=session_id, scopes=scopes)

    async def logout(self, principal: Principal) -> None:
        await self.sessions.revoke(principal.session_id)

    async def _issue(self, *, user_id: int, session_id: str, scopes: frozenset[str]) -> TokenPair:
        refresh_token = new_opaque_token()
        await self.sessions.add_refresh_token(
            session_id=session_id,
            token_hash=fingerprint(refresh_token),
            expires_at=utcnow() + self.refresh_lifetime,
        )
        access_token = self.tokens.issue(user_id=user_id, session_id=session_id, scopes=scopes)
        return TokenPair(
            access_token=access_token,
            expires_in=int(self.tokens.lifetime.total_seconds()),
            refresh_token=refresh_token,
            scope=" ".join(sorted(scopes)),
        )
