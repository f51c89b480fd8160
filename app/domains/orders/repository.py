from decimal import Decimal

from sqlalchemy import ColumnElement, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.core.db.base import utcnow
from app.core.db.keyset import Slice, SortKey, Window, keyset_page
from app.domains.orders.models import Order, OrderStatus

NEWEST_FIRST = SortKey(Order.created_at, Order.id, descending=True)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, order: Order) -> Order:
        self.session.add(order)
        await self.session.flush()
        return order

    async def get(self, order_id: int, *, user_id: int | None) -> Order | None:
        """The order with its lines; with `user_id`, only if that user placed it."""
        statement = (
            select(Order)
            .options(selectinload(Order.lines))
            .where(Order.id == order_id, _owned_by(user_id))
        )
        return (await self.session.scalars(statement)).first()

    async def change_status(
        self, order: Order, *, source: OrderStatus, target: OrderStatus
    ) -> bool:
        """Move an order from `source` to `target`; False if it was no longer in `source`.

        Conditional on the current status in the database, so of two concurrent changes
        (cancel and ship, or two cancels) exactly one happens.
        """
        result = await self.session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == source)
            .values(status=target, updated_at=utcnow())
            .returning(Order.status, Order.updated_at)
            .execution_options(synchronize_session=False)
        )
        row = result.first()
        if row is None:
            return False
        order.status, order.updated_at = row.status, row.updated_at
        return True

    async def current_status(self, order_id: int) -> str | None:
        return await self.session.scalar(select(Order.status).where(Order.id == order_id))

    async def list_page(
        self,
        *,
        owner_id: int | None,
        user_id: int | None,
        status: OrderStatus | None,
        window: Window,
    ) -> Slice[Order]:
        """Newest first. `owner_id` is the ownership rule, `user_id` an optional filter."""
        criteria = [_owned_by(owner_id)]
        if user_id is not None:
            criteria.append(Order.user_id == user_id)
        if status is not None:
            criteria.append(Order.status == status)
        return await keyset_page(
            self.session,
            select(Order).where(*criteria),
            NEWEST_FIRST,
            window,
            options=[selectinload(Order.lines)],
        )

    async def spent_by(self, user_id: int) -> Decimal:
        """What a user's orders cost, cancelled ones excepted."""
        spent = await self.session.scalar(
            select(func.coalesce(func.sum(Order.total), 0)).where(
                Order.user_id == user_id, Order.status != OrderStatus.CANCELLED
            )
        )
        return Decimal(spent or 0).quantize(Decimal("0.01"))


def _owned_by(user_id: int | None) -> ColumnElement[bool]:
    """The ownership rule: None means every order (administrators)."""
    return Order.user_id == user_id if user_id is not None else true()
