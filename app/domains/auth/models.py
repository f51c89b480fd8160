from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, BigIntId, utcnow

# A User-Agent is kept to this many characters: enough to tell clients apart.
USER_AGENT_LENGTH = 255


class AuthSession(Base):
    """One login: the family of refresh tokens it rotates through and its access tokens.

    Revoking the session (logout, reuse of a spent refresh token, a password change, a
    deactivation) stops every token of the family at once, because each authenticated
    request checks the session.
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_id_created_at", "user_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Where the login came from, for the owner's list of sessions; `last_used_at` moves
    # when the session refreshes, never on an ordinary request, which does not write.
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    # Only a SHA-256 fingerprint is stored; the token itself exists only on the client.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    spent_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    """A personal access token for scripts and servers, acting as its user with its scopes.

    Only the SHA-256 of the key is stored; `prefix` (its first characters) lets the owner
    tell keys apart without it. Deleting the row revokes the key on the next request.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class TotpCredential(Base):
    """An account's TOTP secret (RFC 6238), encrypted at rest (app.core.security.SecretBox).

    Pending until `confirmed_at`, when a code from it proved the authenticator holds it.
    `last_step` is the time step of the last code accepted: a code is refused for any step
    up to it, so a code seen over someone's shoulder cannot be used again.
    """

    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_step: Mapped[int | None] = mapped_column(BigIntId, default=None)


class BackupCode(Base):
    """A single-use code that stands in for a TOTP code; only its SHA-256 is stored."""

    __tablename__ = "backup_codes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class MfaChallenge(Base):
    """The second step of a login whose password was right: the `mfa_token` a client trades,
    with a code, for the token pair. Stored as the token's SHA-256; single-use; `attempts`
    counts the codes tried, and the step is spent once they reach the limit."""

    __tablename__ = "mfa_challenges"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    spent_at: Mapped[datetime | None] = mapped_column(default=None)
