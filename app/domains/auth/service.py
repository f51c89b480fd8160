import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.transactions import after_rollback, independent_transaction
from app.core.errors import raises
from app.core.jobs.email import enqueue_email
from app.core.security import PasswordHasher, TokenCodec, fingerprint, new_opaque_token
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth.exceptions import (
    InvalidCredentials,
    InvalidRefreshToken,
    PasswordSessionRequired,
    WrongCurrentPassword,
)
from app.domains.auth.repository import AuthSessionRepository
from app.domains.auth.schemas import (
    ROLE_SCOPES,
    PasswordChange,
    PasswordResetConfirm,
    Principal,
    TokenPair,
    TokenRequest,
)
from app.domains.users.exceptions import UserNotFound
from app.domains.users.models import TokenPurpose, User
from app.domains.users.repository import UserRepository
from app.domains.users.schemas import UserAdminUpdate, UserRead
from app.domains.users.service import AccountLinks, account_email


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
        links: AccountLinks,
        audit: AuditTrail,
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker
        self.users = UserRepository(session)
        self.sessions = AuthSessionRepository(session)
        self.passwords = passwords
        self.tokens = tokens
        self.refresh_lifetime = timedelta(days=refresh_token_days)
        self.links = links
        self.audit = audit

    @raises(InvalidCredentials)
    async def login(self, form: TokenRequest) -> TokenPair:
        user = await self.users.get_by_email(form.username)
        # Verified even for an unknown email (against a dummy hash) so timing is the same.
        valid, new_hash = await self.passwords.verify(
            form.password, user.hashed_password if user else None
        )
        if user is None or not valid or not user.is_active:
            # The username is kept out of the event: people type passwords into it.
            reason = "unknown_email" if user is None else "inactive" if valid else "wrong_password"
            await self.audit.record_despite_failure(
                AuditAction.AUTH_LOGIN_FAILED,
                actor_id=None,
                target=("user", user.id) if user is not None else None,
                details={"reason": reason},
            )
            raise InvalidCredentials
        if new_hash is not None:
            user.hashed_password = new_hash
        allowed = ROLE_SCOPES[user.role]
        requested = frozenset(form.scope.split())
        scopes = allowed & requested if requested else allowed
        session_id = uuid.uuid4().hex
        await self.sessions.open(session_id=session_id, user_id=user.id, scopes=scopes)
        await self.audit.record(
            AuditAction.AUTH_LOGIN,
            actor_id=user.id,
            target=("user", user.id),
            details={"scopes": sorted(scopes)},
        )
        return await self._issue(user_id=user.id, session_id=session_id, scopes=scopes)

    @raises(InvalidRefreshToken)
    async def refresh(self, refresh_token: str) -> TokenPair:
        token_hash = fingerprint(refresh_token)
        session_id = await self.sessions.spend_refresh_token(token_hash)
        if session_id is None:
            # A known but spent token means it was stolen or replayed: end the whole family,
            # including whatever pair was issued when it was first used (RFC 9700 4.14.2).
            # The error rolls this request back, so the revocation commits on its own.
            owner = await self.sessions.owner_of_token(token_hash)
            if owner is not None:
                replayed_in, user_id = owner
                after_rollback(self.session, lambda: self._revoke_apart(replayed_in))
                await self.audit.record_despite_failure(
                    AuditAction.AUTH_REFRESH_REUSE_DETECTED,
                    actor_id=None,
                    target=("user", user_id),
                    details={"session_revoked": True},
                )
            raise InvalidRefreshToken
        auth_session = await self.sessions.get(session_id)
        user = await self.users.get(auth_session.user_id) if auth_session else None
        if auth_session is None or auth_session.revoked_at is not None or user is None:
            raise InvalidRefreshToken
        if not user.is_active:
            raise InvalidRefreshToken
        scopes = frozenset(auth_session.scopes.split()) & ROLE_SCOPES[user.role]
        return await self._issue(user_id=user.id, session_id=session_id, scopes=scopes)

    @raises(PasswordSessionRequired)
    async def logout(self, principal: Principal) -> None:
        await self.sessions.revoke(principal.password_session())
        await self.audit.record(
            AuditAction.AUTH_LOGOUT, actor_id=principal.id, target=("user", principal.id)
        )

    @raises(PasswordSessionRequired, WrongCurrentPassword)
    async def change_password(self, principal: Principal, change: PasswordChange) -> None:
        session_id = principal.password_session()
        user = await self._user(principal.id)
        valid, _ = await self.passwords.verify(change.current_password, user.hashed_password)
        if not valid:
            raise WrongCurrentPassword
        user.hashed_password = await self.passwords.hash(change.new_password)
        # Whoever else held a session may be the reason the password changed.
        await self.sessions.revoke_all_for_user(user.id, keep=session_id)
        await enqueue_email(
            self.session, account_email("password_changed", "Your password was changed", user)
        )
        await self.audit.record(
            AuditAction.USER_PASSWORD_CHANGED, actor_id=user.id, target=("user", user.id)
        )

    async def request_password_reset(self, email: str) -> None:
        """Email a reset link if an active account has this address; answer the same either
        way, so the endpoint cannot be used to find out which emails have accounts."""
        user = await self.users.get_by_email(email)
        if user is None or not user.is_active:
            # A miss still mints and hashes a token, as a hit does, so only the hit's few
            # writes tell them apart, and the per-email limit keeps that from being sampled.
            fingerprint(self.links.link_tokens.seal()[1])
            return
        link = await self.links.issue(user, TokenPurpose.PASSWORD_RESET)
        await enqueue_email(
            self.session, account_email("password_reset", "Reset your password", user, link)
        )
        await self.audit.record(
            AuditAction.USER_PASSWORD_RESET_REQUESTED, actor_id=None, target=("user", user.id)
        )

    @raises(AccountLinks.redeem)
    async def reset_password(self, reset: PasswordResetConfirm) -> None:
        """Set a new password from an emailed link and sign the account out everywhere: the
        old password may be known to someone else."""
        user = await self.links.redeem(reset.token, TokenPurpose.PASSWORD_RESET)
        user.hashed_password = await self.passwords.hash(reset.new_password)
        await self.sessions.revoke_all_for_user(user.id)
        await enqueue_email(
            self.session, account_email("password_was_reset", "Your password was reset", user)
        )
        await self.audit.record(
            AuditAction.USER_PASSWORD_RESET, actor_id=user.id, target=("user", user.id)
        )

    @raises(UserNotFound)
    async def update_access(
        self, admin: Principal, user_id: int, changes: UserAdminUpdate
    ) -> UserRead:
        """An administrator's change of a user's role or activation; deactivation signs the
        user out everywhere at once."""
        user = await self._user(user_id)
        changed = changes.model_dump(mode="json", exclude_unset=True)
        changes.apply_to(user)
        if changes.is_active is False:
            await self.sessions.revoke_all_for_user(user.id)
        await self.session.flush()
        await self.audit.record(
            AuditAction.USER_UPDATED,
            actor_id=admin.id,
            target=("user", user.id),
            details={"changes": sorted(changed), **changed},
        )
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
