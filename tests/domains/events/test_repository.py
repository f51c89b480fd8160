"""The order a stream reads events in: never past one whose transaction may still commit."""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.base import utcnow
from app.core.jobs import enqueue
from app.core.resources import Resources
from app.domains.events.repository import Batch, EventRepository
from app.domains.events.schemas import Position
from app.domains.orders.events import OrderEventType, event_message
from app.domains.orders.models import OrderStatus, ShippingMethod
from app.domains.orders.schemas import AddressRead, OrderRead
from tests.conftest import RUNS_WITH_POSTGRES
from tests.waiting import eventually

START = Position(0, 0)


async def write_event(session: AsyncSession, order_id: int, user_id: int = 1) -> None:
    order = OrderRead(
        id=order_id,
        user_id=user_id,
        status=next(iter(OrderStatus)),
        lines=[],
        subtotal=Decimal("1.00"),
        shipping=ShippingMethod.STANDARD,
        shipping_cost=Decimal("0.00"),
        total=Decimal("1.00"),
        address=AddressRead(street="1 Main Street", city="Springfield", country="US"),
        created_at=utcnow(),
    )
    message = event_message(OrderEventType.PLACED, order)
    await enqueue(session, message.topic, message.payload, dedup_key=message.dedup_key)


async def read(resources: Resources, position: Position = START, owner: int | None = None) -> Batch:
    async with resources.sessionmaker() as session:
        return await EventRepository(session).after(position, owner=owner, limit=10)


def orders(batch: Batch) -> list[int]:
    return [event.data.id for _, event in batch.events]


async def test_events_are_read_in_commit_order_from_a_position(resources: Resources) -> None:
    for order_id in (1, 2, 3):
        async with resources.sessionmaker.begin() as session:
            await write_event(session, order_id, user_id=order_id % 2)
    everything = await read(resources)
    assert orders(everything) == [1, 2, 3]
    assert orders(await read(resources, everything.events[0][0])) == [2, 3]
    assert orders(await read(resources, owner=1)) == [1, 3]


@RUNS_WITH_POSTGRES
async def test_an_event_that_commits_after_a_later_one_is_never_passed_over(
    resources: Resources,
) -> None:
    async with resources.sessionmaker() as slow, resources.sessionmaker() as fast:
        await write_event(slow, 1)  # takes the lower id, commits last
        await write_event(fast, 2)
        await fast.commit()
        held = await read(resources)
        assert held.events == []
        assert held.held_back
        await slow.commit()

    async def both_ready() -> bool:
        # Any other transaction of the cluster still running holds the horizon back too.
        return len((await read(resources)).events) == 2

    await eventually(both_ready)
    batch = await read(resources)
    assert orders(batch) == [1, 2]
    assert not batch.held_back
