"""The business rules of an order, each in this one place and nowhere else: how much of an
item a line may ask for, what an order costs, when overnight shipping is allowed, how large
an order may be, and which status changes are allowed.

Plain functions of plain values: the database never prices or judges an order. It is given
the prices these rules used and refuses the order only when one of them is no longer the
item's price (repository.writes), so the rules stay here even where the database does
the rest in one call.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from app.core.errors import raises
from app.domains.orders.exceptions import OrderTooLarge, OvernightMinimum, RepeatedItem
from app.domains.orders.models import OrderStatus, ShippingMethod

# How many units of one item a line may ask for, and how many lines an order may have.
MIN_QUANTITY = 1
MAX_QUANTITY = 1000
MAX_LINES = 50

# Flat shipping prices; an order's price is always computed here, never taken from a client.
SHIPPING_COSTS: dict[ShippingMethod, Decimal] = {
    ShippingMethod.STANDARD: Decimal("5.00"),
    ShippingMethod.EXPRESS: Decimal("15.00"),
    ShippingMethod.OVERNIGHT: Decimal("30.00"),
}
OVERNIGHT_MIN_SUBTOTAL = Decimal("50.00")
# The largest amount a NUMERIC(12, 2) column holds.
MAX_ORDER_TOTAL = Decimal("9999999999.99")

# Only a placed order changes status; a cancelled one gives its stock back to the catalog.
CHANGEABLE = OrderStatus.PLACED
RETURNS_STOCK = frozenset({OrderStatus.CANCELLED})


class Line(Protocol):
    """One line of an order request: how many of which item."""

    @property
    def item_id(self) -> int: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PricedOrder:
    """What an order costs, line by line in the request's order."""

    unit_prices: tuple[Decimal, ...]
    line_totals: tuple[Decimal, ...]
    subtotal: Decimal
    shipping: ShippingMethod
    shipping_cost: Decimal
    total: Decimal


@raises(RepeatedItem)
def ensure_one_line_per_item(lines: Sequence[Line]) -> None:
    """One line per item keeps pricing and stock accounting unambiguous."""
    lines_of: dict[int, list[int]] = {}
    for index, line in enumerate(lines):
        lines_of.setdefault(line.item_id, []).append(index)
    for item_id, indexes in lines_of.items():
        if len(indexes) > 1:
            raise RepeatedItem(item_id=item_id, lines=indexes)


@raises(OvernightMinimum, OrderTooLarge)
def price_order(
    lines: Sequence[Line], shipping: ShippingMethod, prices: Mapping[int, Decimal]
) -> PricedOrder:
    """The order's price from the catalog's `prices` by item id, never from the client."""
    unit_prices = tuple(prices[line.item_id] for line in lines)
    line_totals = tuple(
        price * line.quantity for price, line in zip(unit_prices, lines, strict=True)
    )
    subtotal = sum(line_totals, Decimal("0.00"))
    if shipping is ShippingMethod.OVERNIGHT and subtotal < OVERNIGHT_MIN_SUBTOTAL:
        raise OvernightMinimum(OVERNIGHT_MIN_SUBTOTAL, subtotal)
    shipping_cost = SHIPPING_COSTS[shipping]
    total = subtotal + shipping_cost
    if total > MAX_ORDER_TOTAL:
        raise OrderTooLarge(MAX_ORDER_TOTAL)
    return PricedOrder(unit_prices, line_totals, subtotal, shipping, shipping_cost, total)
