"""The rows of two-factor login: TOTP credentials, backup codes, and login challenges."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, update

from app.core.db.base import utcnow
from app.core.db.repository import Repository
from app.domains.auth.models import BackupCode, MfaChallenge, TotpCredential


class TotpRepository(Repository[TotpCredential]):
    model = TotpCredential

    async def replace_pending(self, user_id: int, sealed_secret: str) -> None:
        """Start an enrolment, dropping any earlier one the user left unconfirmed."""
        await self.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
        await self.add(TotpCredential(user_id=user_id, secret=sealed_secret))

    async def accept_step(self, user_id: int, step: int) -> bool:
        """Record `step` as the last accepted, unless a step as late was accepted already: of
        two uses of one code, even concurrent ones, exactly one gets True."""
        result = await self.session.execute(
            update(TotpCredential)
            .where(
                TotpCredential.user_id == user_id,
                or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step),
            )
            .values(last_step=step)
            .returning(TotpCredential.user_id)
        )
        return result.first() is not None

    async def confirm(self, user_id: int) -> None:
        await self.session.execute(
            update(TotpCredential)
            .where(TotpCredential.user_id == user_id)
            .values(confirmed_at=utcnow())
        )

    async def reseal(self, user_id: int, sealed_secret: str) -> None:
        await self.session.execute(
            update(TotpCredential)
            .where(TotpCredential.user_id == user_id)
            .values(secret=sealed_secret)
        )

    async def remove_all_for_user(self, user_id: int) -> None:
        """Forget the user's TOTP secret and backup codes."""
        await self.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))
        await self.session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))

    async def replace_backup_codes(self, user_id: int, code_hashes: list[str]) -> None:
        await self.session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
        self.session.add_all(BackupCode(user_id=user_id, code_hash=h) for h in code_hashes)
        await self.session.flush()

    async def spend_backup_code(self, user_id: int, code_hash: str) -> bool:
        """Use an unused backup code of the user's, atomically: it works exactly once."""
        result = await self.session.execute(
            update(BackupCode)
            .where(
                BackupCode.user_id == user_id,
                BackupCode.code_hash == code_hash,
                BackupCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .returning(BackupCode.id)
        )
        return result.first() is not None


@dataclass(frozen=True, slots=True)
class ChallengeAttempt:
    """A code's try at a challenge: whose login it is and which try this is."""

    challenge_id: int
    user_id: int
    scopes: frozenset[str]
    attempt: int


class MfaChallengeRepository(Repository[MfaChallenge]):
    model = MfaChallenge

    async def open(
        self, *, token_hash: str, user_id: int, scopes: frozenset[str], expires_at: datetime
    ) -> None:
        await self.add(
            MfaChallenge(
                token_hash=token_hash,
                user_id=user_id,
                scopes=" ".join(sorted(scopes)),
                expires_at=expires_at,
            )
        )

    async def claim_attempt(self, token_hash: str, most: int) -> ChallengeAttempt | None:
        """Count one more try at a live challenge, in one atomic statement; None when it is
        unknown, spent, expired or out of tries. Counted before the code is checked, so no
        number of concurrent tries gets past `most`."""
        now = utcnow()
        result = await self.session.execute(
            update(MfaChallenge)
            .where(
                MfaChallenge.token_hash == token_hash,
                MfaChallenge.spent_at.is_(None),
                MfaChallenge.expires_at > now,
                MfaChallenge.attempts < most,
            )
            .values(attempts=MfaChallenge.attempts + 1)
            .returning(
                MfaChallenge.id, MfaChallenge.user_id, MfaChallenge.scopes, MfaChallenge.attempts
            )
        )
        row = result.first()
        if row is None:
            return None
        return ChallengeAttempt(row.id, row.user_id, frozenset(row.scopes.split()), row.attempts)

    async def spend(self, challenge_id: int) -> bool:
        """Spend the challenge once its code was right; False when another try spent it."""
        result = await self.session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge_id, MfaChallenge.spent_at.is_(None))
            .values(spent_at=utcnow())
            .returning(MfaChallenge.id)
        )
        return result.first() is not None

    async def delete_finished(self, user_id: int) -> None:
        """Drop the user's spent and expired challenges, which prove nothing any more."""
        await self.session.execute(
            delete(MfaChallenge).where(
                MfaChallenge.user_id == user_id,
                or_(MfaChallenge.spent_at.is_not(None), MfaChallenge.expires_at <= utcnow()),
            )
        )
