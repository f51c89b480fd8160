from datetime import datetime
from typing import Annotated

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
from app.domains.webhooks.models import DeliveryStatus

MAX_URL_LENGTH = 2048
# What the document states: an http(s) URL with a host, nothing around it. The validator
# also parses it, refusing a host that is no host name or address ("https://exa mple").
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@]*@?[^\s/?#@]+([/?#]\S*)?$"
_HTTP_URL = TypeAdapter(AnyHttpUrl)


def _http_url(value: str) -> str:
    # http and https only: no file:, gopher: or other schemes an HTTP client might speak.
    return str(_HTTP_URL.validate_python(value))


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
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="signs every delivery (Standard Webhooks); shown only in this response"
    )


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    event_type: OrderEventType
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryJob(BaseModel):
    """The job log payload of one delivery attempt series: which record to send."""

    delivery_id: int
