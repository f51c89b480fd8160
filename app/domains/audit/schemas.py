from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field

from app.core.types import MAX_ID
from app.domains.audit.models import IP_LENGTH


class AuditAction(StrEnum):
    """Every action the log records; a new kind of event starts with a member here."""

    USER_REGISTERED = "user.registered"
    USER_UPDATED = "user.updated"
    USER_PASSWORD_CHANGED = "user.password_changed"  # noqa: S105 - an action name
    USER_PASSWORD_RESET_REQUESTED = "user.password_reset_requested"  # noqa: S105 - an action name
    USER_PASSWORD_RESET = "user.password_reset"  # noqa: S105 - an action name
    USER_EMAIL_VERIFIED = "user.email_verified"
    USER_EMAIL_CHANGED = "user.email_changed"
    USER_DELETED = "user.deleted"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGOUT = "auth.logout"
    AUTH_REFRESH_REUSE_DETECTED = "auth.refresh_reuse_detected"
    AUTH_SESSION_REVOKED = "auth.session_revoked"
    AUTH_MFA_FAILED = "auth.mfa_failed"
    MFA_ENABLED = "mfa.enabled"
    MFA_DISABLED = "mfa.disabled"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    ORDER_PLACED = "order.placed"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_SHIPPED = "order.shipped"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"  # noqa: S105 - an action name
    WEBHOOK_REDELIVERED = "webhook.redelivered"
    WEBHOOK_DISABLED = "webhook.disabled"


# What an event is about: ("order", 42).
Target = tuple[str, int]

# The members of `details` that name a person rather than an id (`user.email_changed` and
# `user.email_verified` hold addresses): erasing an account removes them from its events.
PERSONAL_DETAILS = frozenset({"email", "previous_email", "full_name"})


@dataclass(frozen=True, slots=True)
class AuditOrigin:
    """Where a change came from, as its event records it: the id of the request that caused
    it (its X-Request-ID) and the client's address."""

    request_id: str | None
    ip: str | None

    @classmethod
    def of(cls, request_id: str | None, ip: str | None) -> Self:
        # An IP address fits in 45 characters; a peer that is not one is cut to the column.
        return cls(request_id, ip[:IP_LENGTH] if ip is not None else None)


class AuditEventRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1042,
                    "action": "user.updated",
                    "actor_id": 1,
                    "target_type": "user",
                    "target_id": 17,
                    "request_id": "4f1c2a9e0b7d4c55a1e3f6b8d2c4e6f0",
                    "ip": "203.0.113.7",
                    "details": {"changes": ["role"], "role": "admin"},
                    "created_at": "2026-12-01T09:30:00Z",
                }
            ]
        },
    )

    id: int
    action: str
    actor_id: int | None = Field(description="the user who acted; null when anonymous")
    target_type: str | None
    target_id: int | None
    request_id: str | None = Field(description="the X-Request-ID of the response that caused it")
    ip: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditFilter(BaseModel):
    """The log's filters (a query-string model); each one narrows the page."""

    action: AuditAction | None = None
    actor_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    target_type: Annotated[str | None, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")] = (
        None
    )
    target_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
