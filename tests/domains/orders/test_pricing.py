"""Pricing is the server's: computed from what the catalog reserved, never from the client."""

from decimal import Decimal

import pytest

from app.domains.items.schemas import ReservedItem
from app.domains.orders.exceptions import OrderTooLarge, OvernightMinimum
from app.domains.orders.schemas import OrderCreate
from app.domains.orders.service import MAX_ORDER_TOTAL, price_order
from tests.factories import order_body


def reserved(*lines: tuple[int, str, int]) -> list[ReservedItem]:
    return [
        ReservedItem(item_id=item_id, name=f"Item {item_id}", price=Decimal(price), quantity=qty)
        for item_id, price, qty in lines
    ]


def request(*lines: tuple[int, int], shipping: str = "standard") -> OrderCreate:
    return OrderCreate.model_validate(order_body(*lines, shipping=shipping))


def test_lines_subtotal_shipping_and_total() -> None:
    order = price_order(
        7, request((1, 3), (2, 1), shipping="express"), reserved((1, "2.50", 3), (2, "10.00", 1))
    )
    assert [(line.item_id, line.line_total) for line in order.lines] == [
        (1, Decimal("7.50")),
        (2, Decimal("10.00")),
    ]
    assert [line.item_name for line in order.lines] == ["Item 1", "Item 2"]
    assert (order.subtotal, order.shipping_cost, order.total) == (
        Decimal("17.50"),
        Decimal("15.00"),
        Decimal("32.50"),
    )
    assert (order.user_id, order.status) == (7, "placed")


@pytest.mark.parametrize(
    ("shipping", "cost"), [("standard", "5.00"), ("express", "15.00"), ("overnight", "30.00")]
)
def test_each_shipping_method_has_its_flat_price(shipping: str, cost: str) -> None:
    order = price_order(1, request((1, 1), shipping=shipping), reserved((1, "60.00", 1)))
    assert order.shipping_cost == Decimal(cost)


def test_overnight_needs_a_subtotal_of_fifty() -> None:
    enough = price_order(1, request((1, 2), shipping="overnight"), reserved((1, "25.00", 2)))
    assert enough.total == Decimal("80.00")
    with pytest.raises(OvernightMinimum, match=r"49\.98"):
        price_order(1, request((1, 2), shipping="overnight"), reserved((1, "24.99", 2)))


def test_a_total_beyond_what_the_books_hold_is_refused() -> None:
    with pytest.raises(OrderTooLarge):
        price_order(1, request((1, 1000)), reserved((1, str(MAX_ORDER_TOTAL / 1000), 1000)))
