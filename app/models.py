"""Every ORM model, imported in one place so the metadata is complete.

Alembic's autogenerate and the test set-up import this module.
"""

from app.core.db.base import Base
from app.core.jobs import OutboxMessage
from app.domains.audit.models import AuditEvent
from app.domains.auth.models import (
    ApiKey,
    AuthSession,
    BackupCode,
    MfaChallenge,
    RefreshToken,
    TotpCredential,
)
from app.domains.items.models import Item
from app.domains.orders.models import IdempotencyKey, Order, OrderLine
from app.domains.posts.models import Post
from app.domains.users.models import AccountToken, User
from app.domains.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "AccountToken",
    "ApiKey",
    "AuditEvent",
    "AuthSession",
    "BackupCode",
    "Base",
    "IdempotencyKey",
    "Item",
    "MfaChallenge",
    "Order",
    "OrderLine",
    "OutboxMessage",
    "Post",
    "RefreshToken",
    "TotpCredential",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
