"""Small async builders that create test data, one module per domain."""

from tests.factories.accounts import (
    API_KEYS,
    PASSWORD,
    Account,
    admin,
    bearer,
    create_api_key,
    log_in,
    principal,
    register,
    token,
    unique_email,
    user,
)
from tests.factories.audit import audit_events
from tests.factories.catalog import ITEMS, create_item, post_item, stock_of
from tests.factories.mail import Inbox, body, job_log_text, link_token, stored_link_tokens
from tests.factories.orders import (
    ADDRESS,
    ORDERS,
    order_body,
    order_count,
    order_service,
    place,
)
from tests.factories.webhooks import ORDER_EVENTS, PUBLIC_URL, WEBHOOKS, register_webhook

__all__ = [
    "ADDRESS",
    "API_KEYS",
    "ITEMS",
    "ORDERS",
    "ORDER_EVENTS",
    "PASSWORD",
    "PUBLIC_URL",
    "WEBHOOKS",
    "Account",
    "Inbox",
    "admin",
    "audit_events",
    "bearer",
    "body",
    "create_api_key",
    "create_item",
    "job_log_text",
    "link_token",
    "log_in",
    "order_body",
    "order_count",
    "order_service",
    "place",
    "post_item",
    "principal",
    "register",
    "register_webhook",
    "stock_of",
    "stored_link_tokens",
    "token",
    "unique_email",
    "user",
]
