"""What the database is given to place an order the rules have priced (repository.writes):
the order as the API will show it, its event, its confirmation email and its audit details,
each but what only the order's own transaction knows, its id and its creation time."""

from app.core.db.base import utcnow
from app.domains.audit.schemas import AuditOrigin
from app.domains.auth.schemas import Principal
from app.domains.orders.events import (
    ORDER_CONFIRMED,
    ORDER_EVENT,
    confirmation_data,
    money,
    placed_event_head,
)
from app.domains.orders.idempotency import IDEMPOTENCY_KEY_TTL
from app.domains.orders.models import OrderStatus
from app.domains.orders.repository.writes import Placement
from app.domains.orders.rules import PricedOrder
from app.domains.orders.schemas import OrderCreate


def new_placement(
    principal: Principal,
    data: OrderCreate,
    priced: PricedOrder,
    *,
    key: str | None,
    fingerprint: str | None,
    origin: AuditOrigin,
) -> Placement:
    """What the database is given to place `data` as `priced`."""
    item_ids = [line.item_id for line in data.lines]
    quantities = [line.quantity for line in data.lines]
    address = data.address
    order = {
        "user_id": principal.id,
        "status": OrderStatus.PLACED.value,
        "lines": [
            {
                "item_id": item_id,
                "quantity": quantity,
                "unit_price": money(unit_price),
                "line_total": money(line_total),
            }
            for item_id, quantity, unit_price, line_total in zip(
                item_ids, quantities, priced.unit_prices, priced.line_totals, strict=True
            )
        ],
        "subtotal": money(priced.subtotal),
        "shipping": priced.shipping.value,
        "shipping_cost": money(priced.shipping_cost),
        "total": money(priced.total),
        "address": {"street": address.street, "city": address.city, "country": address.country},
    }
    return Placement(
        user_id=principal.id,
        item_ids=item_ids,
        quantities=quantities,
        priced=priced,
        street=address.street,
        city=address.city,
        country=address.country,
        order=order,
        event=placed_event_head(utcnow()),
        event_topic=ORDER_EVENT.topic,
        confirmation=confirmation_data(principal.email, quantities, priced),
        confirmation_topic=ORDER_CONFIRMED.topic,
        audit_details={"total": money(priced.total), "lines": len(item_ids)},
        origin=origin,
        key=key,
        fingerprint=fingerprint,
        key_ttl=IDEMPOTENCY_KEY_TTL,
    )
