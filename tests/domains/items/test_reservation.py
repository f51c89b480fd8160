"""The catalog's stock: reserved for every line or none, released capped, invalidated after
the commit; called as the order service calls it, on a real request transaction."""

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Update, delete, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState

from app.core.db.transactions import request_transaction
from app.core.resources import Resources
from app.core.types import MAX_INT32
from app.domains.items.exceptions import OutOfStock, UnknownItems
from app.domains.items.models import Item
from app.domains.items.schemas import StockLine
from app.domains.items.service import ItemReader, ItemService
from tests.factories import create_item, stock_of, user


async def test_reserve_takes_every_line_at_current_prices(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    cheap = await create_item(resources, owner.id, price="2.00", stock=5)
    dear = await create_item(resources, owner.id, price="30.00", stock=1)

    async with request_transaction(resources.sessionmaker) as session:
        taken = await ItemService(session, resources.cache).reserve(
            [StockLine(dear, 1), StockLine(cheap, 4)]
        )

    assert [(item.item_id, str(item.price), item.quantity) for item in taken] == [
        (dear, "30.00", 1),
        (cheap, "2.00", 4),
    ]
    assert (await stock_of(resources, cheap), await stock_of(resources, dear)) == (1, 0)


async def test_a_short_line_reserves_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    plenty = await create_item(resources, owner.id, stock=5)
    scarce = await create_item(resources, owner.id, stock=1)

    with pytest.raises(OutOfStock, match=r"lines\[1\]"):
        async with request_transaction(resources.sessionmaker) as session:
            await ItemService(session, resources.cache).reserve(
                [StockLine(plenty, 5), StockLine(scarce, 2)]
            )

    assert (await stock_of(resources, plenty), await stock_of(resources, scarce)) == (5, 1)


async def test_unknown_items_are_named_by_their_line(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    known = await create_item(resources, owner.id)
    with pytest.raises(UnknownItems) as refused:
        async with request_transaction(resources.sessionmaker) as session:
            await ItemService(session, resources.cache).reserve(
                [StockLine(known, 1), StockLine(10**12, 1)]
            )
    assert refused.value.lines == {1: 10**12}
    assert await stock_of(resources, known) == 10


@contextmanager
def deleted_before_its_stock_is_taken(session: AsyncSession, item_id: int) -> Iterator[None]:
    """The race, made certain: the item is deleted once reserve() has found it in the
    catalog, just before the statement that takes its stock."""
    deleted = False

    def delete_first(state: ORMExecuteState) -> None:
        nonlocal deleted
        statement = state.statement
        if deleted or not isinstance(statement, Update):
            return
        if item_id in statement.compile().params.values():
            deleted = True
            state.session.execute(delete(Item).where(Item.id == item_id))

    event.listen(session.sync_session, "do_orm_execute", delete_first)
    try:
        yield
    finally:
        event.remove(session.sync_session, "do_orm_execute", delete_first)
    assert deleted


async def test_an_item_deleted_after_the_check_is_unknown_not_out_of_stock(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    kept = await create_item(resources, owner.id, stock=5)
    vanishing = await create_item(resources, owner.id, stock=5)

    async def reserve_both() -> None:
        async with request_transaction(resources.sessionmaker) as session:
            with deleted_before_its_stock_is_taken(session, vanishing):
                await ItemService(session, resources.cache).reserve(
                    [StockLine(kept, 1), StockLine(vanishing, 1)]
                )

    with pytest.raises(UnknownItems) as refused:
        await reserve_both()

    assert refused.value.lines == {1: vanishing}
    assert await stock_of(resources, kept) == 5


async def test_release_returns_stock_and_saturates_at_the_maximum(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    item = await create_item(resources, owner.id, stock=3)
    full = await create_item(resources, owner.id, stock=MAX_INT32 - 1)

    async with request_transaction(resources.sessionmaker) as session:
        await ItemService(session, resources.cache).release(
            [StockLine(item, 2), StockLine(full, 5)]
        )

    assert (await stock_of(resources, item), await stock_of(resources, full)) == (5, MAX_INT32)


async def test_cached_reads_are_forgotten_only_once_the_reservation_commits(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner = await user(client)
    item = await create_item(resources, owner.id, stock=4)
    reader = ItemReader(resources.reads, resources.sessionmaker, resources.cache, resources.cursors)

    async def cached_stock() -> int:
        stock: int = json.loads((await reader.get(item)).data)["stock"]
        return stock

    assert await cached_stock() == 4
    async with request_transaction(resources.sessionmaker) as session:
        await ItemService(session, resources.cache).reserve([StockLine(item, 1)])
        # Still the committed value until this transaction commits.
        assert await cached_stock() == 4
    assert await cached_stock() == 3
