"""Placing with the prices a process knows: a stale one costs a second call, never a wrong
price or a wrong refusal; and a repeated request answers from its key whatever the prices
have done since."""

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update

from app.core.resources import Resources
from app.domains.auth.schemas import Principal
from app.domains.items.exceptions import UnknownItems
from app.domains.items.models import Item
from app.domains.orders.exceptions import IdempotencyKeyReused, OvernightMinimum
from app.domains.orders.prices import PriceHints
from app.domains.orders.schemas import OrderCreate
from tests.factories import create_item, order_body, order_count, order_service, principal, user


@pytest.fixture
async def buyer(client: httpx.AsyncClient) -> Principal:
    return principal((await user(client)).id)


def request(*lines: tuple[int, int], shipping: str = "standard") -> OrderCreate:
    return OrderCreate.model_validate(order_body(*lines, shipping=shipping))


async def reprice(resources: Resources, item_id: int, price: str) -> None:
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(Item).where(Item.id == item_id).values(price=Decimal(price)))


async def test_a_stale_price_is_corrected_by_the_database_and_the_order_priced_again(
    resources: Resources, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, price="10.00")
    hints = PriceHints()
    hints.learn({item: Decimal("7.00")})

    placed = await order_service(resources, hints=hints).place(
        buyer, request((item, 2)), idempotency_key=None
    )

    assert (placed.order.lines[0].unit_price, placed.order.total) == (
        Decimal("10.00"),
        Decimal("25.00"),
    )
    assert hints.known([item]) == {item: Decimal("10.00")}


async def test_a_refusal_from_a_stale_price_is_checked_against_the_catalog_first(
    resources: Resources, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, price="30.00")
    hints = PriceHints()
    # Too cheap for overnight shipping, were it true.
    hints.learn({item: Decimal("20.00")})

    placed = await order_service(resources, hints=hints).place(
        buyer, request((item, 2), shipping="overnight"), idempotency_key=None
    )

    assert placed.order.subtotal == Decimal("60.00")


async def test_a_refusal_the_catalog_confirms_stands(
    resources: Resources, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, price="20.00")
    hints = PriceHints()
    hints.learn({item: Decimal("20.00")})
    with pytest.raises(OvernightMinimum):
        await order_service(resources, hints=hints).place(
            buyer, request((item, 2), shipping="overnight"), idempotency_key=None
        )
    assert await order_count(resources) == 0


async def test_items_the_catalog_does_not_have_are_refused_before_anything_is_asked(
    resources: Resources, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id)
    with pytest.raises(UnknownItems, match=r"lines\[0\]\.item_id=999999"):
        await order_service(resources).place(
            buyer, request((999_999, 1), (item, 1)), idempotency_key=None
        )
    assert await order_count(resources) == 0


async def test_a_repeat_is_answered_from_its_key_even_where_the_rules_now_refuse(
    resources: Resources, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, price="30.00")
    body = request((item, 2), shipping="overnight")
    first = await order_service(resources).place(buyer, body, idempotency_key="k")
    await reprice(resources, item, "20.00")

    # A process that knows the new price: its rules refuse, its key answers.
    repeat = await order_service(resources).place(buyer, body, idempotency_key="k")

    assert (repeat.order, repeat.replayed) == (first.order, True)
    with pytest.raises(IdempotencyKeyReused):
        await order_service(resources).place(
            buyer, request((item, 1), shipping="overnight"), idempotency_key="k"
        )
    assert await order_count(resources) == 1
