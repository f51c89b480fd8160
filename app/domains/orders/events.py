"""What an order's changes cause beyond the order, queued in the order's own transaction: an
order event for whoever subscribes to it (webhooks, above this domain) and the customer's
emails. Each is a job log message, so it exists if and only if the change committed.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.base import utcnow
from app.core.jobs import MessageType
from app.core.jobs.email import EmailMessage, enqueue_email
from app.core.jobs.templates import render_email
from app.domains.orders.schemas import OrderRead
from app.domains.users.repository import UserRepository


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


ORDER_EVENT = MessageType("order.event", OrderEvent)


def confirmation_email(to: str, order: OrderRead) -> EmailMessage:
    return render_email(
        "order_confirmed",
        to=to,
        subject=f"Order {order.id} confirmed",
        order_id=order.id,
        items=sum(line.quantity for line in order.lines),
        subtotal=order.subtotal,
        shipping=order.shipping.value,
        shipping_cost=order.shipping_cost,
        total=order.total,
    )


def shipped_email(to: str, order: OrderRead) -> EmailMessage:
    return render_email(
        "order_shipped",
        to=to,
        subject=f"Order {order.id} has shipped",
        order_id=order.id,
        shipping=order.shipping.value,
        street=order.address.street,
        city=order.address.city,
        country=order.address.country,
    )


class OrderEvents:
    """Queues the messages of each order change in the caller's transaction.

    Dedup keys name the change itself (an order is placed, cancelled or shipped once), so
    no path can queue one twice.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepository(session)

    async def placed(self, order: OrderRead, *, customer_email: str) -> None:
        await self._publish(OrderEventType.PLACED, order)
        await enqueue_email(
            self.session,
            confirmation_email(customer_email, order),
            dedup_key=f"email.order_confirmation:{order.id}",
        )

    async def cancelled(self, order: OrderRead) -> None:
        await self._publish(OrderEventType.CANCELLED, order)

    async def shipped(self, order: OrderRead) -> None:
        await self._publish(OrderEventType.SHIPPED, order)
        # Shipped by an administrator: the address is the customer's, not the caller's.
        customer = await self.users.get(order.user_id)
        # An erased account has no address any more: its order ships without an email.
        if customer is not None and customer.deleted_at is None:
            await enqueue_email(
                self.session,
                shipped_email(customer.email, order),
                dedup_key=f"email.order_shipped:{order.id}",
            )

    async def _publish(self, type_: OrderEventType, order: OrderRead) -> None:
        event = OrderEvent(id=f"evt_{uuid.uuid4().hex}", type=type_, timestamp=utcnow(), data=order)
        await ORDER_EVENT.enqueue(self.session, event, dedup_key=f"{type_}:{order.id}")
