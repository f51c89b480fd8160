import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.transactions import after_rollback, independent_transaction
from app.core.errors import raises
from app.core.jobs.email import enqueue_email
from app.core.security import PasswordHasher, TokenCodec, fingerprint, new_opaque_token
from app.domains.audit.repository import AuditEventRepository
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth.exceptions import (
    InvalidCredentials,
    InvalidMfaToken,
    InvalidRefreshToken,
    InvalidScope,
    LastAdmin,
    PasswordSessionRequired,
    WrongCurrentPassword,
)
from app.domains.auth.mfa import MfaService
from app.domains.auth.mfa_repository import TotpRepository
from app.domains.auth.models import USER_AGENT_LENGTH
from app.domains.auth.password_resets import PasswordResetJob, queue_password_reset
from app.domains.auth.repository import ApiKeyRepository, AuthSessionRepository
from app.domains.auth.schemas import (
    ROLE_SCOPES,
    AccountDeletion,
    MfaLogin,
    PasswordChange,
    PasswordResetConfirm,
    Principal,
    TokenPair,
    TokenRequest,
)
from app.domains.users.exceptions import UserNotFound
from app.domains.users.models import Role, TokenPurpose, User
from app.domains.users.repository import AccountTokenRepository, UserRepository
from app.domains.users.schemas import UserAdminUpdate, UserRead, UserUpdate
from app.domains.users.service import AccountLinks, UserService, account_email


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
        profiles: UserService,
        mfa: MfaService,
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker
        self.users = UserRepository(session)
        self.sessions = AuthSessionRepository(session)
        self.keys = ApiKeyRepository(session)
        self.passwords = passwords
        self.tokens = tokens
        self.refresh_lifetime = timedelta(days=refresh_token_days)
        self.links = links
        self.audit = audit
        self.profiles = profiles
        self.mfa = mfa

    @raises(InvalidCredentials, InvalidRefreshToken, InvalidScope, MfaService.challenge)
    async def grant(self, form: TokenRequest, *, user_agent: str | None) -> TokenPair:
        """The token endpoint: a password login, or a refresh (RFC 6749 section 6) with
        exactly /auth/refresh's effects."""
        if form.grant_type == "refresh_token" and form.refresh_token is not None:
            return await self.refresh(form.refresh_token, scope=form.scope)
        return await self.login(form, user_agent=user_agent)

    @raises(InvalidCredentials, MfaService.challenge)
    async def login(self, form: TokenRequest, *, user_agent: str | None) -> TokenPair:
        email, password = form.username or "", form.password or ""
        user = await self.users.get_by_email(email)
        # Verified even for an unknown email (against a dummy hash) so timing is the same.
        valid, new_hash = await self.passwords.verify(
            password, user.hashed_password if user else None
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
        if user.mfa_enabled:
            # The rehash commits with the challenge: the 401 rolls this request back.
            raise await self.mfa.challenge(user, scopes, new_hash=new_hash)
        return await self._open_session(user.id, scopes, user_agent=user_agent)

    @raises(MfaService.pass_challenge, InvalidMfaToken)
    async def login_with_code(self, body: MfaLogin, *, user_agent: str | None) -> TokenPair:
        """The second step of a login with two-factor login on: the mfa_token and a code."""
        attempt, kind = await self.mfa.pass_challenge(body.mfa_token, body.code)
        user = await self.users.get(attempt.user_id)
        if user is None or not user.is_active:
            # Deactivated between the two steps: the password step no longer stands.
            raise InvalidMfaToken
        # Scopes as the role allows now, should it have changed since the password step.
        scopes = attempt.scopes & ROLE_SCOPES[user.role]
        return await self._open_session(user.id, scopes, user_agent=user_agent, mfa=kind.value)

    async def _open_session(
        self, user_id: int, scopes: frozenset[str], *, user_agent: str | None, **details: str
    ) -> TokenPair:
        session_id = uuid.uuid4().hex
        await self.sessions.open(
            session_id=session_id,
            user_id=user_id,
            scopes=scopes,
            ip=self.audit.ip,
            user_agent=user_agent[:USER_AGENT_LENGTH] if user_agent else None,
        )
        await self.audit.record(
            AuditAction.AUTH_LOGIN,
            actor_id=user_id,
            target=("user", user_id),
            details={"scopes": sorted(scopes), **details},
        )
        return await self._issue(user_id=user_id, session_id=session_id, scopes=scopes)

    @raises(InvalidRefreshToken, InvalidScope)
    async def refresh(self, refresh_token: str, *, scope: str = "") -> TokenPair:
        """A new pair for a live refresh token, which is spent; `scope` may narrow the new
        access token to some of the scopes the session was granted (RFC 6749 section 6)."""
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
        requested = frozenset(scope.split())
        if requested - scopes:
            raise InvalidScope(sorted(requested - scopes))
        await self.sessions.mark_used(session_id)
        return await self._issue(user_id=user.id, session_id=session_id, scopes=requested or scopes)

    @raises(PasswordSessionRequired)
    async def logout(self, principal: Principal) -> None:
        await self.sessions.revoke(principal.password_session())
        await self.audit.record(
            AuditAction.AUTH_LOGOUT, actor_id=principal.id, target=("user", principal.id)
        )

    @raises(PasswordSessionRequired, WrongCurrentPassword)
    async def change_password(self, principal: Principal, change: PasswordChange) -> None:
        session_id = principal.password_session()
        user = await self._user_with_password(principal.id, change.current_password)
        user.hashed_password = await self.passwords.hash(change.new_password)
        # Whoever else held a session may be the reason the password changed.
        await self.sessions.revoke_all_for_user(user.id, keep=session_id)
        await enqueue_email(
            self.session, account_email("password_changed", "Your password was changed", user)
        )
        await self.audit.record(
            AuditAction.USER_PASSWORD_CHANGED, actor_id=user.id, target=("user", user.id)
        )

    @raises(PasswordSessionRequired, WrongCurrentPassword, UserService.update_profile)
    async def update_profile(self, principal: Principal, changes: UserUpdate) -> UserRead:
        """Change the caller's name, or email. The email signs in and receives reset links,
        so whoever moves it moves the account: that takes what a password change takes, a
        password session and the current password (an API key with `profile` renames)."""
        if changes.email is not None:
            principal.password_session()
            # UserUpdate requires current_password with an email; "" would fail all the same.
            await self._user_with_password(principal.id, changes.current_password or "")
        return await self.profiles.update_profile(principal.id, changes)

    async def request_password_reset(self, email: str) -> None:
        """Ask for a reset link for `email`, whether or not an account has it. Only a job is
        queued here, the same for every address, so the answer and its timing tell nothing;
        the job mails an active account its link (app.domains.auth.password_resets)."""
        job = PasswordResetJob(email=email, request_id=self.audit.request_id, ip=self.audit.ip)
        await queue_password_reset(self.session, job)

    @raises(AccountLinks.redeem)
    async def reset_password(self, reset: PasswordResetConfirm) -> None:
        """Set a new password from an emailed link, sign the account out everywhere and
        revoke its API keys: the old password may be known to someone else, and so may any
        key minted with it (or by whoever registered the address before its owner did)."""
        user = await self.links.redeem(reset.token, TokenPurpose.PASSWORD_RESET)
        user.hashed_password = await self.passwords.hash(reset.new_password)
        await self.sessions.revoke_all_for_user(user.id)
        for key_id in await self.keys.delete_all_for_user(user.id):
            await self.audit.record(
                AuditAction.API_KEY_REVOKED,
                actor_id=user.id,
                target=("api_key", key_id),
                details={"reason": "password_reset"},
            )
        await enqueue_email(
            self.session, account_email("password_was_reset", "Your password was reset", user)
        )
        await self.audit.record(
            AuditAction.USER_PASSWORD_RESET, actor_id=user.id, target=("user", user.id)
        )

    @raises(PasswordSessionRequired, WrongCurrentPassword, LastAdmin)
    async def erase_account(self, principal: Principal, deletion: AccountDeletion) -> None:
        """Erase the caller's account: the email and name are gone (the address may register
        again), it never logs in again, its sessions, API keys, pending links and second
        factor end now, and its past audit events lose the email and name they held. The
        row stays, so the orders and items that name its id stay business records."""
        principal.password_session()
        user = await self._user_with_password(principal.id, deletion.password)
        if user.role == Role.ADMIN and not await self.users.other_active_admins(user.id):
            raise LastAdmin
        # Rendered while the address is known: the last email the account gets.
        notice = account_email("account_deleted", "Your account was deleted", user)
        user.erase()
        await self.session.flush()
        await self.sessions.revoke_all_for_user(user.id)
        await self.keys.delete_all_for_user(user.id)
        await AccountTokenRepository(self.session).delete_all_for_user(user.id)
        await TotpRepository(self.session).remove_all_for_user(user.id)
        await AuditEventRepository(self.session).forget_personal_details(user.id)
        await enqueue_email(self.session, notice)
        await self.audit.record(
            AuditAction.USER_DELETED, actor_id=user.id, target=("user", user.id)
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

    async def _user_with_password(self, user_id: int, password: str) -> User:
        """The account, once `password` proves to be its current one."""
        user = await self._user(user_id)
        valid, _ = await self.passwords.verify(password, user.hashed_password)
        if not valid:
            raise WrongCurrentPassword
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
