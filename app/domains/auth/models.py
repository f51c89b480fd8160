from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, BigIntId, utcnow


class AuthSession(Base):
    """One login: the family of refresh tokens it rotates through and its access tokens.

    Revoking the session (logout, reuse of a spent refresh token, a password change, a
    deactivation) stops every token of the family at once, because each authenticated
    request checks the session.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


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
