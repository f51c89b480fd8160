"""Order transitions and visibility, through the order service as a request uses it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.core.db.keyset import CursorCodec
from app.core.pagination import PageParams
from app.core.resources import Resources
from app.domains.auth.schemas import Principal, Scope
from app.domains.orders.exceptions import IllegalTransition, OrderNotFound
from app.domains.orders.schemas import OrderCreate, OrderFilter, OrderRead
from app.domains.orders.service import OrderService, owner_filter
from app.domains.users.models import Role
from tests.factories import create_item, order_body, order_service, principal, stock_of, user


def first_page() -> PageParams:
    return PageParams(offset=0, limit=10, cursor=None, codec=CursorCodec("test-secret"))


@asynccontextmanager
async def orders(resources: Resources) -> AsyncIterator[OrderService]:
    yield order_service(resources)


async def placed_order(
    resources: Resources, buyer: Principal, item_id: int, quantity: int = 2
) -> OrderRead:
    async with orders(resources) as service:
        data = OrderCreate.model_validate(order_body((item_id, quantity)))
        placed = await service.place(buyer, data, idempotency_key=None)
    return placed.order


async def test_cancel_returns_the_stock_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = principal((await user(client)).id)
    item = await create_item(resources, buyer.id, stock=5)
    order = await placed_order(resources, buyer, item)
    assert await stock_of(resources, item) == 3

    async with orders(resources) as service:
        assert (await service.cancel(buyer, order.id)).status == "cancelled"
    assert await stock_of(resources, item) == 5

    with pytest.raises(IllegalTransition, match="cancelled"):
        async with orders(resources) as service:
            await service.cancel(buyer, order.id)
    assert await stock_of(resources, item) == 5


async def test_only_placed_orders_ship(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = principal((await user(client)).id)
    boss = principal(buyer.id, role=Role.ADMIN)
    item = await create_item(resources, buyer.id, stock=5)
    shipped = await placed_order(resources, buyer, item, 1)
    cancelled = await placed_order(resources, buyer, item, 1)

    async with orders(resources) as service:
        assert (await service.ship(boss, shipped.id)).status == "shipped"
        await service.cancel(buyer, cancelled.id)
    with pytest.raises(IllegalTransition, match="shipped"):
        async with orders(resources) as service:
            await service.cancel(buyer, shipped.id)
    with pytest.raises(IllegalTransition, match="cancelled"):
        async with orders(resources) as service:
            await service.ship(boss, cancelled.id)
    assert await stock_of(resources, item) == 4


async def test_someone_elses_order_does_not_exist_for_them(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = principal((await user(client)).id)
    stranger = principal((await user(client)).id)
    item = await create_item(resources, buyer.id)
    order = await placed_order(resources, buyer, item)

    async with orders(resources) as service:
        assert (await service.get_for(buyer, order.id)).id == order.id
        with pytest.raises(OrderNotFound):
            await service.get_for(stranger, order.id)
        with pytest.raises(OrderNotFound):
            await service.cancel(stranger, order.id)
        assert (await service.list_page(stranger, OrderFilter(), first_page())).total == 0


def test_only_administrators_acting_as_such_see_every_order() -> None:
    assert owner_filter(principal(5)) == 5
    assert owner_filter(principal(5, role=Role.ADMIN)) is None
    # An administrator's token narrowed to user scopes acts as that user.
    assert owner_filter(principal(5, role=Role.ADMIN, scopes=[Scope.ORDERS_READ])) == 5
