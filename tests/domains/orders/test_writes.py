"""The order writes of the database under test (PostgreSQL's functions, or SQLite's
statements): the same placements and changes, the same outcomes, and nothing written by a
refusal. The suite runs on both, so both implementations pass these."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from opentelemetry.trace import NoOpTracer
from sqlalchemy import delete, func, select

from app.core.db.base import utcnow
from app.core.jobs import OutboxMessage
from app.core.resources import Resources
from app.core.types import MAX_INT32
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditAction, AuditOrigin
from app.domains.auth.schemas import Principal
from app.domains.items.models import Item
from app.domains.orders.events import (
    OrderConfirmation,
    OrderEvent,
    OrderEventType,
    event_message,
)
from app.domains.orders.idempotency import request_fingerprint
from app.domains.orders.models import IdempotencyKey, IdempotencyStatus, Order, OrderStatus
from app.domains.orders.placement import new_placement
from app.domains.orders.repository import OrderWrites, order_writes
from app.domains.orders.repository.postgres import FUNCTIONS
from app.domains.orders.repository.writes import (
    ChangeOutcome,
    Outcome,
    Placement,
    StatusChange,
)
from app.domains.orders.rules import price_order
from app.domains.orders.schemas import OrderCreate, OrderRead
from tests.factories import create_item, order_body, principal, stock_of, user
from tests.waiting import eventually

ORIGIN = AuditOrigin.of("req-7", "203.0.113.9")


@pytest.fixture
def writes(resources: Resources) -> OrderWrites:
    return order_writes(resources.engine, resources.calls, NoOpTracer())


@pytest.fixture
async def buyer(client: httpx.AsyncClient) -> Principal:
    return principal((await user(client)).id)


def placement(
    buyer: Principal,
    *lines: tuple[int, int],
    prices: dict[int, str],
    key: str | None = None,
    shipping: str = "standard",
) -> Placement:
    data = OrderCreate.model_validate(order_body(*lines, shipping=shipping))
    priced = price_order(
        data.lines, data.shipping, {item: Decimal(price) for item, price in prices.items()}
    )
    return new_placement(
        buyer,
        data,
        priced,
        key=key,
        fingerprint=request_fingerprint(data) if key is not None else None,
        origin=ORIGIN,
    )


async def rows(resources: Resources) -> dict[str, int]:
    """How many rows each table an order writes holds."""
    async with resources.sessionmaker() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Order, AuditEvent, OutboxMessage, IdempotencyKey)
        }


async def test_placing_records_everything_at_once(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    pen = await create_item(resources, buyer.id, price="12.50", stock=10)
    ink = await create_item(resources, buyer.id, price="3.99", stock=10)
    placed = await writes.place(
        placement(buyer, (ink, 3), (pen, 2), prices={pen: "12.50", ink: "3.99"}, key="k-1")
    )

    assert placed.outcome is Outcome.PLACED
    assert placed.order_id is not None
    assert (await stock_of(resources, pen), await stock_of(resources, ink)) == (8, 7)
    async with resources.sessionmaker() as session:
        order = await session.get_one(Order, placed.order_id)
        await session.refresh(order, ["lines"])
        [audit] = await session.scalars(select(AuditEvent).filter_by(action="order.placed"))
        messages = {m.topic: m for m in await session.scalars(select(OutboxMessage))}
        [key] = await session.scalars(select(IdempotencyKey))
    # Lines in the request's order, named as the catalog named the items.
    assert [(line.item_id, line.quantity, str(line.unit_price)) for line in order.lines] == [
        (ink, 3, "3.99"),
        (pen, 2, "12.50"),
    ]
    assert all(line.item_name.startswith("Item ") for line in order.lines)
    assert (order.status, str(order.subtotal), str(order.total)) == ("placed", "36.97", "41.97")
    shown = OrderRead.model_validate(order)
    assert shown.created_at == placed.created_at
    assert (audit.action, audit.actor_id, audit.target_type, audit.target_id) == (
        "order.placed",
        buyer.id,
        "order",
        order.id,
    )
    assert (audit.request_id, audit.ip, audit.details) == (
        "req-7",
        "203.0.113.9",
        {"total": "41.97", "lines": 2},
    )
    # What the job log's handlers will read: the event with the order as the API shows it,
    # and what the confirmation email says.
    event = OrderEvent.model_validate(messages["order.event"].payload)
    assert (event.type, event.data) == (OrderEventType.PLACED, shown)
    assert messages["order.event"].dedup_key == f"order.placed:{order.id}"
    confirmation = OrderConfirmation.model_validate(messages["email.order_confirmed"].payload)
    assert (confirmation.to, confirmation.order_id, confirmation.items) == (
        buyer.email,
        order.id,
        5,
    )
    assert (key.status, key.response_status) == (IdempotencyStatus.COMPLETED, 201)
    assert key.response_body is not None
    assert OrderRead.model_validate(key.response_body) == shown
    assert key.expires_at > utcnow() + timedelta(hours=23)


async def test_a_repeated_key_replays_the_answer_and_writes_nothing(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, stock=10)
    first = await writes.place(placement(buyer, (item, 1), prices={item: "10.00"}, key="again"))
    before = await rows(resources)

    repeat = await writes.place(placement(buyer, (item, 1), prices={item: "10.00"}, key="again"))

    assert repeat.outcome is Outcome.REPLAY
    assert repeat.replay_status == 201
    assert repeat.replay_body is not None
    assert repeat.replay_body["id"] == first.order_id
    assert await rows(resources) == before
    assert await stock_of(resources, item) == 9


async def test_a_key_used_with_another_request_is_refused(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, stock=10)
    await writes.place(placement(buyer, (item, 1), prices={item: "10.00"}, key="mine"))
    before = await rows(resources)
    other = await writes.place(placement(buyer, (item, 2), prices={item: "10.00"}, key="mine"))
    assert other.outcome is Outcome.KEY_REUSED
    assert await rows(resources) == before


async def store_key(
    resources: Resources,
    buyer: Principal,
    key: str,
    status: IdempotencyStatus,
    expires_in: timedelta,
    request: Placement,
) -> None:
    async with resources.sessionmaker() as session:
        session.add(
            IdempotencyKey(
                id=uuid.uuid4().hex,
                user_id=buyer.id,
                key=key,
                fingerprint=request.fingerprint,
                status=status,
                response_status=201 if status is IdempotencyStatus.COMPLETED else None,
                response_body={"id": 1} if status is IdempotencyStatus.COMPLETED else None,
                expires_at=utcnow() + expires_in,
            )
        )
        await session.commit()


async def test_a_key_left_in_flight_by_an_earlier_release_is_in_flight(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id)
    request = placement(buyer, (item, 1), prices={item: "10.00"}, key="old")
    await store_key(
        resources, buyer, "old", IdempotencyStatus.IN_FLIGHT, timedelta(seconds=60), request
    )
    assert (await writes.place(request)).outcome is Outcome.IN_FLIGHT
    assert await stock_of(resources, item) == 10


async def test_an_expired_key_is_used_afresh(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id)
    request = placement(buyer, (item, 1), prices={item: "10.00"}, key="stale")
    await store_key(
        resources, buyer, "stale", IdempotencyStatus.COMPLETED, timedelta(seconds=-1), request
    )
    placed = await writes.place(request)
    assert placed.outcome is Outcome.PLACED
    async with resources.sessionmaker() as session:
        [key] = await session.scalars(select(IdempotencyKey))
    assert key.response_body is not None
    assert key.response_body["id"] == placed.order_id


async def test_unknown_items_are_named_by_line_and_nothing_is_taken(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id)
    before = await rows(resources)
    refused = await writes.place(
        placement(buyer, (item, 1), (10**12, 1), prices={item: "10.00", 10**12: "1.00"})
    )
    assert (refused.outcome, refused.unknown) == (Outcome.UNKNOWN, {1: 10**12})
    assert await stock_of(resources, item) == 10
    assert await rows(resources) == before


async def test_the_first_short_line_by_item_id_refuses_and_nothing_is_taken(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    first = await create_item(resources, buyer.id, stock=1)
    second = await create_item(resources, buyer.id, stock=1)
    plenty = await create_item(resources, buyer.id, stock=50)
    prices = {first: "10.00", second: "10.00", plenty: "10.00"}
    refused = await writes.place(
        placement(buyer, (plenty, 5), (second, 2), (first, 2), prices=prices)
    )
    assert (refused.outcome, refused.short_line) == (Outcome.SHORT, 2)
    assert [await stock_of(resources, item) for item in (first, second, plenty)] == [1, 1, 50]
    assert (await rows(resources))["orders"] == 0


async def test_a_price_that_changed_refuses_with_the_prices_now(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    cheap = await create_item(resources, buyer.id, price="2.00")
    dear = await create_item(resources, buyer.id, price="30.00")
    refused = await writes.place(
        placement(buyer, (cheap, 1), (dear, 1), prices={cheap: "2.00", dear: "25.00"})
    )
    assert refused.outcome is Outcome.PRICE_CHANGED
    assert refused.prices == {cheap: Decimal("2.00"), dear: Decimal("30.00")}
    assert (await stock_of(resources, cheap), await stock_of(resources, dear)) == (10, 10)
    assert (await rows(resources))["orders"] == 0


async def change(
    writes: OrderWrites,
    order: OrderRead,
    target: OrderStatus,
    *,
    owner_id: int | None,
    returns_stock: bool,
) -> ChangeOutcome:
    changed = order.model_copy(update={"status": target})
    result = await writes.change_status(
        StatusChange(
            order_id=order.id,
            owner_id=owner_id,
            source=OrderStatus.PLACED,
            target=target,
            returns_stock=returns_stock,
            actor_id=order.user_id,
            action=AuditAction.ORDER_CANCELLED,
            origin=ORIGIN,
            messages=[event_message(OrderEventType.CANCELLED, changed)],
        )
    )
    return result.outcome


async def placed_order(
    resources: Resources, writes: OrderWrites, buyer: Principal, *lines: tuple[int, int]
) -> OrderRead:
    prices = dict.fromkeys((item for item, _ in lines), "10.00")
    result = await writes.place(placement(buyer, *lines, prices=prices))
    async with resources.sessionmaker() as session:
        order = await session.get_one(Order, result.order_id)
        await session.refresh(order, ["lines"])
        return OrderRead.model_validate(order)


async def test_cancelling_returns_the_stock_capped_and_records_it(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, stock=5)
    full = await create_item(resources, buyer.id, stock=5)
    gone = await create_item(resources, buyer.id, stock=5)
    order = await placed_order(resources, writes, buyer, (item, 2), (full, 3), (gone, 1))
    async with resources.sessionmaker() as session:
        await session.execute(delete(Item).where(Item.id == gone))
        full_row = await session.get_one(Item, full)
        full_row.stock = MAX_INT32 - 1
        await session.commit()

    outcome = await change(
        writes, order, OrderStatus.CANCELLED, owner_id=buyer.id, returns_stock=True
    )

    assert outcome is ChangeOutcome.CHANGED
    assert (await stock_of(resources, item), await stock_of(resources, full)) == (5, MAX_INT32)
    async with resources.sessionmaker() as session:
        status = await session.scalar(select(Order.status).where(Order.id == order.id))
        actions = list(await session.scalars(select(AuditEvent.action)))
        keys = set(await session.scalars(select(OutboxMessage.dedup_key)))
    assert status == "cancelled"
    assert actions.count("order.cancelled") == 1
    assert f"order.cancelled:{order.id}" in keys


async def test_only_a_placed_order_changes_and_only_for_its_owner(
    resources: Resources, writes: OrderWrites, buyer: Principal
) -> None:
    item = await create_item(resources, buyer.id, stock=5)
    order = await placed_order(resources, writes, buyer, (item, 2))
    stranger = buyer.id + 1

    assert (
        await change(writes, order, OrderStatus.CANCELLED, owner_id=stranger, returns_stock=True)
    ) is ChangeOutcome.NOT_FOUND
    assert (
        await change(writes, order, OrderStatus.SHIPPED, owner_id=None, returns_stock=False)
    ) is ChangeOutcome.CHANGED
    before = await rows(resources)
    result = await writes.change_status(
        StatusChange(
            order_id=order.id,
            owner_id=buyer.id,
            source=OrderStatus.PLACED,
            target=OrderStatus.CANCELLED,
            returns_stock=True,
            actor_id=buyer.id,
            action=AuditAction.ORDER_CANCELLED,
            origin=ORIGIN,
            messages=[],
        )
    )
    assert (result.outcome, result.status) == (ChangeOutcome.ILLEGAL, "shipped")
    assert await rows(resources) == before
    assert await stock_of(resources, item) == 3


# PostgreSQL: what only concurrent transactions can show.


@pytest.fixture
async def holder(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another client of the database, in a transaction of its own."""
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    await connection.execute("BEGIN")
    try:
        yield connection
    finally:
        await connection.execute("ROLLBACK")
        await connection.close()


async def waiting_for_a_lock(holder: asyncpg.Connection, count: int = 1) -> None:
    async def blocked() -> bool:
        # Activity is read once per transaction unless the snapshot is dropped.
        await holder.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await holder.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%place_order_v1%' AND pid <> pg_backend_pid()"
        )
        return bool(waiting >= count)

    await eventually(blocked)


async def test_a_key_held_by_a_request_in_flight_is_refused_at_once(
    resources: Resources, writes: OrderWrites, buyer: Principal, holder: asyncpg.Connection
) -> None:
    item = await create_item(resources, buyer.id)
    request = placement(buyer, (item, 1), prices={item: "10.00"}, key="busy")
    await holder.execute("SELECT 1 FROM items WHERE id = $1 FOR UPDATE", item)
    first = asyncio.create_task(writes.place(request))
    # The first holds the key while it waits for the item.
    await waiting_for_a_lock(holder)

    assert (await writes.place(request)).outcome is Outcome.IN_FLIGHT

    await holder.execute("COMMIT")
    assert (await first).outcome is Outcome.PLACED
    assert (await writes.place(request)).outcome is Outcome.REPLAY


async def test_an_item_deleted_while_its_lock_was_awaited_is_unknown(
    resources: Resources, writes: OrderWrites, buyer: Principal, holder: asyncpg.Connection
) -> None:
    kept = await create_item(resources, buyer.id, stock=5)
    vanishing = await create_item(resources, buyer.id, stock=5)
    await holder.execute("SELECT 1 FROM items WHERE id = $1 FOR UPDATE", vanishing)
    placing = asyncio.create_task(
        writes.place(
            placement(buyer, (kept, 1), (vanishing, 1), prices={kept: "10.00", vanishing: "10.00"})
        )
    )
    await waiting_for_a_lock(holder)
    await holder.execute("DELETE FROM items WHERE id = $1", vanishing)
    await holder.execute("COMMIT")

    refused = await placing
    assert (refused.outcome, refused.unknown) == (Outcome.UNKNOWN, {1: vanishing})
    assert await stock_of(resources, kept) == 5


async def test_the_database_has_each_function_with_the_arguments_its_caller_passes(
    postgres_url: str, resources: Resources
) -> None:
    connection = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        for function in FUNCTIONS:
            deployed = await connection.fetch(
                "SELECT array(SELECT format_type(type, NULL) FROM unnest(proargtypes) AS type) "
                "AS arguments FROM pg_proc WHERE proname = $1",
                function.name,
            )
            assert [tuple(row["arguments"]) for row in deployed] == [function.arguments]
    finally:
        await connection.close()
