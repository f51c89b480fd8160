import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.core.db import utcnow
from app.domains.items.models import Item
from app.domains.orders.models import (
    IdempotencyKey,
    IdempotencyStatus,
    Order,
    OrderStatus,
)


@dataclass(frozen=True, slots=True)
class ReservedItem:
    """What the catalog said about an item at the moment its stock was taken."""

    name: str
    price: Decimal


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing_item_ids(self, item_ids: Iterable[int]) -> set[int]:
        rows = await self.session.scalars(select(Item.id).where(Item.id.in_(list(item_ids))))
        return set(rows)

    async def take_stock(self, item_id: int, quantity: int) -> ReservedItem | None:
        """Take `quantity` of an item if that many are in stock; None if not.

        One conditional UPDATE: the check and the decrement are a single atomic step, so
        concurrent orders can never both take the last unit, and on PostgreSQL only this
        item's row is locked (until the transaction ends), never unrelated ones.
        """
        result = await self.session.execute(
            update(Item)
            .where(Item.id == item_id, Item.stock >= quantity)
            .values(stock=Item.stock - quantity)
            .returning(Item.name, Item.price)
            .execution_options(synchronize_session=False)
        )
        row = result.first()
        return ReservedItem(name=row.name, price=row.price) if row is not None else None

    async def return_stock(self, item_id: int, quantity: int) -> None:
        await self.session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(stock=Item.stock + quantity)
            .execution_options(synchronize_session=False)
        )

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
        offset: int,
        limit: int,
    ) -> tuple[list[Order], int]:
        """Newest first. `owner_id` is the ownership rule, `user_id` an optional filter."""
        criteria = [_owned_by(owner_id)]
        if user_id is not None:
            criteria.append(Order.user_id == user_id)
        if status is not None:
            criteria.append(Order.status == status)
        total = await self.session.scalar(select(func.count()).select_from(Order).where(*criteria))
        statement = (
            select(Order)
            .options(selectinload(Order.lines))
            .where(*criteria)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(await self.session.scalars(statement)), total or 0

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


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    fingerprint: str
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None


class IdempotencyKeyRepository:
    """Idempotency keys: claims in their own short transactions, completion in the request's.

    A claim must be visible to a concurrent duplicate before the first request finishes, so
    it commits on its own; the stored response, by contrast, commits with the order, so a key
    is completed if and only if its order exists.
    """

    def __init__(
        self, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.session = session
        self.sessionmaker = sessionmaker

    async def claim(
        self, *, user_id: int, key: str, fingerprint: str, lease: timedelta
    ) -> tuple[str | None, KeyRecord | None]:
        """Insert the key as in flight: (new claim id, None), or (None, the existing record).

        Expired records of this user, the key's included, are removed first, so an expired
        key is reused as if new and a user's keys do not pile up. (None, None) means the
        existing record vanished between the insert and the read: the caller may try again.
        """
        now = utcnow()
        claim_id = uuid.uuid4().hex
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.expires_at <= now
                )
            )
            values = {
                "id": claim_id,
                "user_id": user_id,
                "key": key,
                "fingerprint": fingerprint,
                "status": IdempotencyStatus.IN_FLIGHT,
                "created_at": now,
                "expires_at": now + lease,
            }
            dialect = (await session.connection()).dialect.name
            insert = (
                postgresql.insert(IdempotencyKey)
                if dialect == "postgresql"
                else sqlite.insert(IdempotencyKey)
            )
            inserted = await session.scalar(
                insert.values(values)
                .on_conflict_do_nothing(index_elements=["user_id", "key"])
                .returning(IdempotencyKey.id)
            )
            if inserted is not None:
                return claim_id, None
            row = (
                await session.execute(
                    select(
                        IdempotencyKey.id,
                        IdempotencyKey.fingerprint,
                        IdempotencyKey.status,
                        IdempotencyKey.response_status,
                        IdempotencyKey.response_body,
                    ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                )
            ).first()
        if row is None:
            return None, None
        return None, KeyRecord(
            id=row.id,
            fingerprint=row.fingerprint,
            status=row.status,
            response_status=row.response_status,
            response_body=row.response_body,
        )

    async def complete(
        self,
        claim_id: str,
        *,
        response_status: int,
        response_body: dict[str, Any],
        expires_at: datetime,
    ) -> bool:
        """Store the response with the claim, in the request's transaction.

        False if the claim is gone: it outlived its lease and another request took the key.
        """
        result = await self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == claim_id,
                IdempotencyKey.status == IdempotencyStatus.IN_FLIGHT,
            )
            .values(
                status=IdempotencyStatus.COMPLETED,
                response_status=response_status,
                response_body=response_body,
                expires_at=expires_at,
            )
            .returning(IdempotencyKey.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def release(self, claim_id: str) -> None:
        """Forget an in-flight claim whose request failed, so the key can be retried."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.id == claim_id,
                    IdempotencyKey.status == IdempotencyStatus.IN_FLIGHT,
                )
            )
