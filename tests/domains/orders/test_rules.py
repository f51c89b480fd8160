"""The order's rules, as pure functions of plain values: pricing is the server's, computed from
the catalog's prices, never from the client; the overnight minimum, the total cap, one line
per item and the quantity bounds."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from app.domains.orders.exceptions import OrderTooLarge, OvernightMinimum, RepeatedItem
from app.domains.orders.models import ShippingMethod
from app.domains.orders.rules import (
    MAX_LINES,
    MAX_ORDER_TOTAL,
    MAX_QUANTITY,
    MIN_QUANTITY,
    ensure_one_line_per_item,
    price_order,
)
from app.domains.orders.schemas import OrderCreate, OrderLineCreate
from tests.factories import order_body


def request(*lines: tuple[int, int], shipping: str = "standard") -> OrderCreate:
    return OrderCreate.model_validate(order_body(*lines, shipping=shipping))


def prices(**by_item: str) -> dict[int, Decimal]:
    return {int(item.removeprefix("i")): Decimal(price) for item, price in by_item.items()}


def test_lines_subtotal_shipping_and_total_in_the_requests_order() -> None:
    data = request((2, 1), (1, 3), shipping="express")
    priced = price_order(data.lines, data.shipping, prices(i1="2.50", i2="10.00"))
    assert priced.unit_prices == (Decimal("10.00"), Decimal("2.50"))
    assert priced.line_totals == (Decimal("10.00"), Decimal("7.50"))
    assert (priced.subtotal, priced.shipping_cost, priced.total) == (
        Decimal("17.50"),
        Decimal("15.00"),
        Decimal("32.50"),
    )
    assert priced.shipping is ShippingMethod.EXPRESS


@pytest.mark.parametrize(
    ("shipping", "cost"), [("standard", "5.00"), ("express", "15.00"), ("overnight", "30.00")]
)
def test_each_shipping_method_has_its_flat_price(shipping: str, cost: str) -> None:
    data = request((1, 1), shipping=shipping)
    assert price_order(data.lines, data.shipping, prices(i1="60.00")).shipping_cost == Decimal(cost)


def test_overnight_needs_a_subtotal_of_fifty() -> None:
    data = request((1, 2), shipping="overnight")
    assert price_order(data.lines, data.shipping, prices(i1="25.00")).total == Decimal("80.00")
    with pytest.raises(OvernightMinimum, match=r"49\.98"):
        price_order(data.lines, data.shipping, prices(i1="24.99"))


def test_a_total_beyond_what_the_books_hold_is_refused() -> None:
    data = request((1, 1000))
    just_fits = (MAX_ORDER_TOTAL - Decimal("5.00")) / 1000
    assert price_order(data.lines, data.shipping, {1: just_fits}).total == MAX_ORDER_TOTAL
    with pytest.raises(OrderTooLarge):
        price_order(data.lines, data.shipping, {1: just_fits + Decimal("0.01")})


def test_an_item_on_two_lines_is_refused_naming_both() -> None:
    with pytest.raises(RepeatedItem, match=r"lines\[0\], lines\[2\]"):
        ensure_one_line_per_item(request((7, 1), (8, 1), (7, 2)).lines)
    ensure_one_line_per_item(request((7, 1), (8, 1)).lines)


@pytest.mark.parametrize("quantity", [MIN_QUANTITY, MAX_QUANTITY])
def test_a_line_asks_for_one_to_a_thousand(quantity: int) -> None:
    assert OrderLineCreate(item_id=1, quantity=quantity).quantity == quantity


@pytest.mark.parametrize("quantity", [MIN_QUANTITY - 1, MAX_QUANTITY + 1])
def test_a_line_outside_the_bounds_is_invalid(quantity: int) -> None:
    with pytest.raises(ValidationError, match="quantity"):
        OrderLineCreate(item_id=1, quantity=quantity)


def test_an_order_has_at_most_fifty_lines() -> None:
    assert len(request(*((n, 1) for n in range(1, MAX_LINES + 1))).lines) == MAX_LINES
    with pytest.raises(ValidationError, match="lines"):
        request(*((n, 1) for n in range(1, MAX_LINES + 2)))
