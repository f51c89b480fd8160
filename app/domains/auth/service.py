import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import after_rollback, independent_transaction, utcnow
from app.core.email import EmailMessage, enqueue_email
from app.core.errors import raises
from app.core.security import PasswordHasher, TokenCodec, fingerprint, new_opaque_token
from app.domains.auth.exceptions import (
    InvalidCredentials,
    InvalidRefreshToken,
    WrongCurrentPassword,
)
from app.domains.auth.repository import AuthSessionRepository
from app.domains.auth.schemas import (
    ROLE_SCOPES,
    PasswordChange,
    Principal,
    TokenPair,
    TokenRequest,
)
from app.domains.users.exceptions import UserNotFound
from app.domains.users.models import User
from app.domains.users.repository import UserRepository
from app.domains.users.schemas import UserAdminUpdate, UserRead


def password_changed_email(user: User) -> EmailMessage:
    return EmailMessage(
        to=user.email,
        subject="Your password was changed",
        text=(
            f"Hello {user.full_name},\n\nThe password of {user.email} was just changed and "
            "every other session was signed out. If this was not you, reset it now.\n"
        ),
    )


class AuthService:
    """Credentials, sessions and access: the owner of every session revocation."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        passwords: PasswordHasher,
        tokens: TokenCodec,
        refresh_token_days: int,
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker
        self.users = UserRepository(session)
        self.sessions = AuthSessionRepository(session)
        self.passwords = passwords
        self.tokens = tokens
        self.refresh_lifetime = timedelta(days=refresh_token_days)

    @raises(InvalidCredentials)
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

    @raises(InvalidRefreshToken)
    async def refresh(self, refresh_token: str) -> TokenPair:
        token_hash = fingerprint(refresh_token)
        session_id = await self.sessions.spend_refresh_token(token_hash)
        if session_id is None:
            # A known but spent token means it was stolen or replayed: end the whole family,
            # including whatever pair was issued when it was first used (RFC 9700 4.14.2).
            # The error rolls this request back, so the revocation commits on its own.
            replayed_in = await self.sessions.session_of_token(token_hash)
            if replayed_in is not None:
                after_rollback(self.session, lambda: self._revoke_apart(replayed_in))
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

    @raises(WrongCurrentPassword)
    async def change_password(self, principal: Principal, change: PasswordChange) -> None:
        user = await self._user(principal.id)
        valid, _ = await self.passwords.verify(change.current_password, user.hashed_password)
        if not valid:
            raise WrongCurrentPassword
        user.hashed_password = await self.passwords.hash(change.new_password)
        # Whoever else held a session may be the reason the password changed.
        await self.sessions.revoke_all_for_user(user.id, keep=principal.session_id)
        await enqueue_email(self.session, password_changed_email(user))

    @raises(UserNotFound)
    async def update_access(self, user_id: int, changes: UserAdminUpdate) -> UserRead:
        """An administrator's change of a user's role or activation; deactivation signs the
        user out everywhere at once."""
        user = await self._user(user_id)
        changes.apply_to(user)
        if changes.is_active is False:
            await self.sessions.revoke_all_for_user(user.id)
        await self.session.flush()
        return UserRead.model_validate(user)

    async def _user(self, user_id: int) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound
        return user

    async def _revoke_apart(self, session_id: str) -> None:
        async with independent_transaction(self.sessionmaker) as session:
            await AuthSessionRepository(session).revoke(session_id)

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
