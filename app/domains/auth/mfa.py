"""Two-factor login with TOTP (RFC 6238): enrolment, backup codes, and the codes that
complete a login or turn the second factor off.

The secret is stored only sealed (app.core.security.SecretBox, a key derived from
SECRET_KEY), shown once at enrolment, and never logged. Each TOTP code works once (the
last accepted time step is kept), each backup code works once, and a login's second step
takes at most `MAX_ATTEMPTS` codes.
"""

import secrets
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db.base import utcnow
from app.core.db.transactions import independent_transaction
from app.core.errors import raises
from app.core.jobs.email import enqueue_email
from app.core.security import SecretBox, fingerprint, new_opaque_token
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth import totp
from app.domains.auth.exceptions import (
    InvalidCode,
    InvalidMfaToken,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaNotEnrolling,
    MfaRequired,
    PasswordSessionRequired,
    WrongMfaCode,
)
from app.domains.auth.mfa_repository import ChallengeAttempt, MfaChallengeRepository, TotpRepository
from app.domains.auth.models import TotpCredential
from app.domains.auth.schemas import BackupCodes, Principal, TotpEnrolment
from app.domains.users.models import User
from app.domains.users.repository import UserRepository
from app.domains.users.service import account_email

MFA_TOKEN_LIFETIME = timedelta(minutes=5)
# Codes one login's second step takes before its mfa_token is spent.
MAX_ATTEMPTS = 5
BACKUP_CODE_COUNT = 10
# 12 base32 characters, 60 bits each: stored as SHA-256, unguessable from a leaked table.
_BACKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_BACKUP_LENGTH = 12


class CodeKind(StrEnum):
    TOTP = "totp"
    BACKUP_CODE = "backup_code"


def _new_backup_code() -> str:
    code = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(_BACKUP_LENGTH))
    return "-".join(code[i : i + 4] for i in range(0, _BACKUP_LENGTH, 4))


def _backup_fingerprint(code: str) -> str:
    # People type backup codes with or without dashes and spaces, in either case.
    return fingerprint("".join(code.split()).replace("-", "").lower())


def _secret_context(user_id: int) -> str:
    return f"totp:{user_id}"


class MfaService:
    """The caller's second factor, and the second step of a login."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        audit: AuditTrail,
        issuer: str,
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker
        self.users = UserRepository(session)
        self.totp = TotpRepository(session)
        self.box = box
        self.audit = audit
        self.issuer = issuer

    @raises(PasswordSessionRequired, MfaAlreadyEnabled)
    async def enrol(self, principal: Principal) -> TotpEnrolment:
        """A new secret for the caller's authenticator, pending until a code confirms it."""
        principal.password_session()
        if principal.mfa_enabled:
            raise MfaAlreadyEnabled
        secret = totp.new_secret()
        sealed = self.box.seal(secret, _secret_context(principal.id))
        await self.totp.replace_pending(principal.id, sealed)
        uri = totp.provisioning_uri(secret, account=principal.email, issuer=self.issuer)
        return TotpEnrolment(secret=secret, otpauth_uri=uri)

    @raises(PasswordSessionRequired, MfaAlreadyEnabled, MfaNotEnrolling, InvalidCode)
    async def confirm(self, principal: Principal, code: str) -> BackupCodes:
        """Turn two-factor login on once a code shows the authenticator holds the secret."""
        principal.password_session()
        user = await self._user(principal.id)
        if user.mfa_enabled:
            raise MfaAlreadyEnabled
        credential = await self.totp.get(user.id)
        if credential is None:
            raise MfaNotEnrolling
        if await self._spend_totp(credential, code) is None:
            raise InvalidCode
        await self.totp.confirm(user.id)
        codes = [_new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
        await self.totp.replace_backup_codes(user.id, [_backup_fingerprint(c) for c in codes])
        user.mfa_enabled = True
        await enqueue_email(
            self.session,
            account_email("mfa_enabled", "Two-factor login is on", user),
        )
        await self.audit.record(AuditAction.MFA_ENABLED, actor_id=user.id, target=("user", user.id))
        return BackupCodes(backup_codes=codes)

    @raises(PasswordSessionRequired, MfaNotEnabled, InvalidCode)
    async def disable(self, principal: Principal, code: str) -> None:
        """Turn two-factor login off, with a current code or a backup code."""
        principal.password_session()
        user = await self._user(principal.id)
        if not user.mfa_enabled:
            raise MfaNotEnabled
        kind = await self.spend_code(user.id, code)
        if kind is None:
            await self._record_failure(user.id, "disable")
            raise InvalidCode
        await self.totp.remove_all_for_user(user.id)
        user.mfa_enabled = False
        await enqueue_email(
            self.session, account_email("mfa_disabled", "Two-factor login is off", user)
        )
        await self.audit.record(
            AuditAction.MFA_DISABLED,
            actor_id=user.id,
            target=("user", user.id),
            details={"with": kind},
        )

    @raises(MfaRequired)
    async def challenge(
        self, user: User, scopes: frozenset[str], *, new_hash: str | None
    ) -> MfaRequired:
        """The error answering a right password for an account with two-factor login on.

        The challenge is written in a transaction of its own, with the password's renewed
        hash if one is due: the error rolls the request back, and the client must be able
        to use the token it carries.
        """
        token = new_opaque_token()
        async with independent_transaction(self.sessionmaker) as session:
            if new_hash is not None:
                await UserRepository(session).set_password_hash(user.id, new_hash)
            challenges = MfaChallengeRepository(session)
            await challenges.delete_finished(user.id)
            await challenges.open(
                token_hash=fingerprint(token),
                user_id=user.id,
                scopes=scopes,
                expires_at=utcnow() + MFA_TOKEN_LIFETIME,
            )
        return MfaRequired(token, int(MFA_TOKEN_LIFETIME.total_seconds()))

    @raises(InvalidMfaToken, WrongMfaCode)
    async def pass_challenge(self, mfa_token: str, code: str) -> tuple[ChallengeAttempt, CodeKind]:
        """The login a right code completes, spending its mfa_token; a wrong code counts
        against the token's tries, which commit whatever the request does."""
        async with independent_transaction(self.sessionmaker) as session:
            attempt = await MfaChallengeRepository(session).claim_attempt(
                fingerprint(mfa_token), MAX_ATTEMPTS
            )
        if attempt is None:
            raise InvalidMfaToken
        kind = await self.spend_code(attempt.user_id, code)
        if kind is None or not await MfaChallengeRepository(self.session).spend(
            attempt.challenge_id
        ):
            await self._record_failure(attempt.user_id, "login", attempt=attempt.attempt)
            raise WrongMfaCode
        return attempt, kind

    async def spend_code(self, user_id: int, code: str) -> CodeKind | None:
        """Use a TOTP code or a backup code of a user with two-factor login on; None when it
        is neither (wrong, or used already)."""
        credential = await self.totp.get(user_id)
        if credential is None or credential.confirmed_at is None:
            return None
        if await self._spend_totp(credential, code) is not None:
            return CodeKind.TOTP
        if await self.totp.spend_backup_code(user_id, _backup_fingerprint(code)):
            return CodeKind.BACKUP_CODE
        return None

    async def _spend_totp(self, credential: TotpCredential, code: str) -> int | None:
        """The time step of a valid, unused TOTP code, now recorded as used."""
        digits = "".join(code.split())
        if len(digits) != totp.DIGITS or not digits.isdigit():
            return None
        context = _secret_context(credential.user_id)
        secret = self.box.open(credential.secret, context)
        step = totp.matching_step(secret, digits)
        if step is None or not await self.totp.accept_step(credential.user_id, step):
            return None
        if self.box.needs_resealing(credential.secret):
            # Sealed before SECRET_KEY was rotated: moved to the current key while it opens.
            await self.totp.reseal(credential.user_id, self.box.seal(secret, context))
        return step

    async def _record_failure(self, user_id: int, step: str, **details: object) -> None:
        await self.audit.record_despite_failure(
            AuditAction.AUTH_MFA_FAILED,
            actor_id=None,
            target=("user", user_id),
            details={"step": step, **details},
        )

    async def _user(self, user_id: int) -> User:
        user = await self.users.get(user_id)
        if user is None:  # the principal was read on this request, so it exists
            raise MfaNotEnabled
        return user
