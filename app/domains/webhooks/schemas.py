from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import httpx
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
)

from app.core.schemas import PartialUpdate
from app.core.types import CleanStr
from app.domains.orders.events import OrderEventType
from app.domains.orders.schemas import OrderRead
from app.domains.webhooks.models import RESPONSE_BODY_CHARS, DeliveryStatus, DisabledReason

MAX_URL_LENGTH = 2048
# What the document states: http or https, optional credentials, an ASCII host name (an
# internationalised one in its xn-- form) or a bracketed IPv6 address, an optional port, and
# nothing around it. The validator then parses it as the deliveries will, which refuses
# what a pattern cannot tell: an IPv4 number over 255, a port over 65535, a broken xn--.
_USER = "[A-Za-z0-9._~!$&'()*+,;=%-]*"
URL_PATTERN = (
    f"^[Hh][Tt][Tt][Pp][Ss]?://(?:{_USER}(?::{_USER})?@)?"
    "(?:[A-Za-z0-9_.-]+|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?(?:[/?#]\\S*)?$"
)
_HTTP_URL = TypeAdapter(AnyHttpUrl)


def _http_url(value: str) -> str:
    # http and https only: no file:, gopher: or other schemes an HTTP client might speak.
    url = str(_HTTP_URL.validate_python(value))
    try:
        # As the deliveries will read it: a host they cannot decode is no host.
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError) as error:
        raise ValueError("the URL's host is not a valid host name or address") from error
    if not host:
        raise ValueError("the URL has no host")
    return url


def _distinct(events: list[OrderEventType]) -> list[OrderEventType]:
    return sorted(set(events))


WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_LENGTH, pattern=URL_PATTERN),
    AfterValidator(_http_url),
    Field(description="http or https, with a host; the address it resolves to is checked"),
]
Events = Annotated[
    list[OrderEventType], Field(min_length=1, max_length=10), AfterValidator(_distinct)
]
Description = Annotated[CleanStr, StringConstraints(max_length=500)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    events: Events
    description: Description = ""


class WebhookUpdate(PartialUpdate):
    url: WebhookUrl | None = None
    events: Events | None = None
    description: Description | None = None
    is_active: StrictBool | None = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[OrderEventType]
    description: str
    is_active: bool
    disabled_reason: DisabledReason | None = Field(
        description="`failing` when the service turned it off after "
        "WEBHOOK_DISABLE_AFTER_DEAD dead deliveries in a row; null otherwise"
    )
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="signs every delivery (Standard Webhooks); shown only in this response"
    )


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="signs every delivery from now on, beside the previous secret until "
        "WEBHOOK_SECRET_OVERLAP_SECONDS have passed; shown only in this response"
    )


class WebhookEventType(StrEnum):
    """Events of the webhook itself, beside the order events it subscribes to."""

    PING = "webhook.ping"


# Every type a delivery can carry.
DeliveryEventType = OrderEventType | WebhookEventType


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    event_type: DeliveryEventType
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None = Field(
        description="why the last attempt failed (a timeout, a refused connection, a "
        "redirect, an HTTP status); null once one succeeds"
    )
    last_response_body: str | None = Field(
        description=f"the first {RESPONSE_BODY_CHARS:,} characters of the receiver's last answer"
    )
    next_attempt_at: datetime | None = Field(
        description="when the next attempt is due; null when none is scheduled"
    )
    created_at: datetime
    delivered_at: datetime | None


class DeliveryFilter(BaseModel):
    """The deliveries' filters (a query-string model); each one narrows the page."""

    status: DeliveryStatus | None = None
    event_type: DeliveryEventType | None = None


class PingData(BaseModel):
    """The `data` of a `webhook.ping` event: which webhook it tests."""

    webhook_id: int


class DeliveryHeaders(BaseModel):
    """The Standard Webhooks headers of every delivery."""

    webhook_id: str = Field(
        description="the event's id: the same on every retry and redelivery, so a receiver "
        "that has seen it ignores it"
    )
    webhook_timestamp: int = Field(description="when this attempt was signed, in Unix seconds")
    webhook_signature: str = Field(
        description='`v1,` + base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" '
        'keyed with the base64-decoded secret after "whsec_"; during a secret rotation two, '
        "space-separated, the new secret's first"
    )


class OrderEventPayload(BaseModel):
    """What an endpoint receives for an order event: the order as the change left it."""

    type: OrderEventType
    timestamp: datetime = Field(description="when the change committed (ISO 8601)")
    data: OrderRead = Field(description="the order, as GET /api/v1/orders/{order_id} answers")


class PingPayload(BaseModel):
    """What an endpoint receives when an administrator pings it."""

    type: Literal[WebhookEventType.PING]
    timestamp: datetime
    data: PingData


class WebhookDeliveryJob(BaseModel):
    """The job log payload of one delivery attempt series: which record to send."""

    delivery_id: int
