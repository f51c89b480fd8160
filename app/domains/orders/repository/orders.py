"""The orders as they are read: one order with its lines, pages of them, what a user spent;
and the housekeeping of the idempotency keys."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.repository import PURGE_BATCH_SIZE, Repository, delete_in_batches
from app.domains.orders.models import IdempotencyKey, Order, OrderStatus

NEWEST_FIRST = SortKey(Order.created_at, Order.id, descending=True)


class OrderRepository(Repository[Order]):
    model = Order

    async def get_with_lines(self, order_id: int, *, user_id: int | None) -> Order | None:
        """The order with its lines; with `user_id`, only if that user placed it."""
        statement = (
            select(Order)
            .options(selectinload(Order.lines))
            .where(Order.id == order_id, _owned_by(user_id))
        )
        return (await self.session.scalars(statement)).first()

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
        statement = select(Order).where(*criteria)
        return await self.page(NEWEST_FIRST, window, statement, options=[selectinload(Order.lines)])

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


async def purge_expired_keys(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    before: datetime,
    batch_size: int = PURGE_BATCH_SIZE,
) -> int:
    """Delete idempotency keys that expired before `before`, a batch per transaction; how
    many went. Found through the index on `expires_at`, whoever owns them."""
    expired = select(IdempotencyKey.id).where(IdempotencyKey.expires_at <= before)
    return await delete_in_batches(sessionmaker, IdempotencyKey, expired, batch_size=batch_size)
