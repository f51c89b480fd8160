"""What an order's changes cause beyond the order, queued in the order's own transaction: an
order event for whoever subscribes to it (webhooks, above this domain) and the customer's
emails. Each is a job log message, so it exists if and only if the change committed.

An email is queued as the data it needs, not as text: its job renders it from the templates
as it is sent (`confirmation_email`, `shipped_email`), so no request pays for rendering.
Dedup keys name the change itself (an order is placed, cancelled or shipped once), so no
path can queue one twice.
"""

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from app.core.db.base import utcnow
from app.core.jobs import Delivery, MessageType, NewMessage
from app.core.jobs.email import EmailMessage
from app.core.jobs.templates import render_email
from app.core.types import Money
from app.domains.orders.models import ShippingMethod
from app.domains.orders.rules import PricedOrder
from app.domains.orders.schemas import OrderRead


class OrderEventType(StrEnum):
    PLACED = "order.placed"
    CANCELLED = "order.cancelled"
    SHIPPED = "order.shipped"


class OrderEvent(BaseModel):
    """A change of an order, as it stood once the change committed."""

    id: str
    type: OrderEventType
    timestamp: datetime
    data: OrderRead


def envelope(event: OrderEvent) -> dict[str, object]:
    """What a subscriber receives of an event, the same every time: each webhook delivery's
    body and each live event's data."""
    return {
        "type": event.type.value,
        "timestamp": event.timestamp.isoformat(),
        "data": event.data.model_dump(mode="json"),
    }


# The Message-ID's local part, chosen as the message is queued and stored with it, so every
# attempt sends the same Message-ID (app.core.jobs.email).
MessageKey = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class OrderConfirmation(BaseModel):
    """What the confirmation email says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: EmailStr
    order_id: int
    items: int
    subtotal: Money
    shipping: ShippingMethod
    shipping_cost: Money
    total: Money
    key: MessageKey


class ShippingNotice(BaseModel):
    """What the email saying an order has shipped says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: EmailStr
    order_id: int
    shipping: ShippingMethod
    street: str
    city: str
    country: str
    key: MessageKey


ORDER_EVENT = MessageType("order.event", OrderEvent)
ORDER_CONFIRMED = MessageType("email.order_confirmed", OrderConfirmation)
ORDER_SHIPPED = MessageType("email.order_shipped", ShippingNotice)


def confirmation_email(confirmation: OrderConfirmation) -> EmailMessage:
    return render_email(
        "order_confirmed",
        to=confirmation.to,
        subject=f"Order {confirmation.order_id} confirmed",
        order_id=confirmation.order_id,
        items=confirmation.items,
        subtotal=confirmation.subtotal,
        shipping=confirmation.shipping.value,
        shipping_cost=confirmation.shipping_cost,
        total=confirmation.total,
    ).model_copy(update={"key": confirmation.key})


def shipped_email(notice: ShippingNotice) -> EmailMessage:
    return render_email(
        "order_shipped",
        to=notice.to,
        subject=f"Order {notice.order_id} has shipped",
        order_id=notice.order_id,
        shipping=notice.shipping.value,
        street=notice.street,
        city=notice.city,
        country=notice.country,
    ).model_copy(update={"key": notice.key})


P = TypeVar("P", bound=BaseModel)
SendEmail = Callable[[EmailMessage, Delivery], Awaitable[None]]


def mailer(
    render: Callable[[P], EmailMessage], send: SendEmail
) -> Callable[[P, Delivery], Awaitable[None]]:
    """The handler of an email job: renders the stored data and sends it as the job log's
    email handler would (`send`, app.core.jobs.email.email_handler)."""

    async def deliver(data: P, delivery: Delivery) -> None:
        await send(render(data), delivery)

    return deliver


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def new_message_key() -> str:
    return secrets.token_hex(16)


def event_message(type_: OrderEventType, order: OrderRead) -> NewMessage:
    event = OrderEvent(id=new_event_id(), type=type_, timestamp=utcnow(), data=order)
    return ORDER_EVENT.message(event, dedup_key=dedup_key(type_, order.id))


def shipping_message(to: str, order: OrderRead) -> NewMessage:
    notice = ShippingNotice(
        to=to,
        order_id=order.id,
        shipping=order.shipping,
        street=order.address.street,
        city=order.address.city,
        country=order.address.country,
        key=new_message_key(),
    )
    return ORDER_SHIPPED.message(notice, dedup_key=dedup_key(ORDER_SHIPPED.topic, order.id))


def dedup_key(change: str, order_id: int) -> str:
    """ "order.placed:42": a change of an order happens once, and so does its message."""
    return f"{change}:{order_id}"


def placed_event_head(timestamp: datetime) -> dict[str, Any]:
    """The `order.placed` event without its data, which the order's own transaction adds
    once the order has an id (repository.writes)."""
    return {
        "id": new_event_id(),
        "type": OrderEventType.PLACED.value,
        "timestamp": timestamp.isoformat(),
    }


def confirmation_data(to: str, quantities: Iterable[int], priced: PricedOrder) -> dict[str, Any]:
    """The confirmation of a new order but its id, which the order's own transaction adds."""
    return {
        "to": to,
        "items": sum(quantities),
        "subtotal": money(priced.subtotal),
        "shipping": priced.shipping.value,
        "shipping_cost": money(priced.shipping_cost),
        "total": money(priced.total),
        "key": new_message_key(),
    }


def money(amount: Decimal) -> str:
    """An amount as the API writes it: two places ("12.50")."""
    return f"{amount:.2f}"
