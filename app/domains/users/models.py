from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import Base, BigIntId, TimestampMixin, utcnow


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    # Stored lower-cased, so the unique constraint makes emails unique case-insensitively
    # and concurrent registrations of one address cannot both succeed.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    hashed_password: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER)
    is_active: Mapped[bool] = mapped_column(default=True)
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    mfa_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set when the account was erased: its email and name are gone, the row stays because
    # orders and items still name its id.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    def erase(self) -> None:
        """Make the account anonymous, keeping its id for the records that name it. The
        address left in its place is unique and under `.invalid` (RFC 2606), which no
        registration accepts, so it can neither be registered nor receive mail."""
        self.email = f"deleted-{self.id}@erased.invalid"
        self.full_name = ""
        # No password hashes to this: the account never logs in again.
        self.hashed_password = "!"  # noqa: S105 - matches no password
        self.is_active = False
        self.email_verified = False
        self.mfa_enabled = False
        self.deleted_at = utcnow()


class TokenPurpose(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret


class AccountToken(Base):
    """A single-use token emailed to an account's address, stored only as its SHA-256.

    `email` is the address it was sent to: once the account's address changes, the token no
    longer proves anything about the account and stops working.
    """

    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('email_verification', 'password_reset')", name="purpose"),
        Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Set when the token is used, or when a newer one of the same purpose replaces it.
    spent_at: Mapped[datetime | None] = mapped_column(default=None)
