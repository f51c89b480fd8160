from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, true, update
from sqlalchemy.orm import selectinload

from app.core.db.base import utcnow
from app.core.db.keyset import Slice, SortKey, Window
from app.core.db.repository import Repository, insert_ignoring
from app.domains.orders.models import IdempotencyKey, IdempotencyStatus, Order, OrderStatus

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


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    fingerprint: str
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None


class IdempotencyKeyRepository(Repository[IdempotencyKey]):
    """The idempotency keys of order requests, one per user and key."""

    model = IdempotencyKey

    async def insert_claim(
        self, claim_id: str, *, user_id: int, key: str, fingerprint: str, lease: timedelta
    ) -> bool:
        """Store the key as in flight under `claim_id`; False when the user has it already.

        The user's expired keys, this one's included, are removed first, so an expired key is
        reused as if new and a user's keys do not pile up.
        """
        now = utcnow()
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.expires_at <= now
            )
        )
        inserted = await self.session.scalar(
            insert_ignoring(
                self.session, IdempotencyKey, [IdempotencyKey.user_id, IdempotencyKey.key]
            )
            .values(
                id=claim_id,
                user_id=user_id,
                key=key,
                fingerprint=fingerprint,
                status=IdempotencyStatus.IN_FLIGHT,
                created_at=now,
                expires_at=now + lease,
            )
            .returning(IdempotencyKey.id)
        )
        return inserted is not None

    async def find(self, user_id: int, key: str) -> KeyRecord | None:
        row = (
            await self.session.execute(
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
            return None
        return KeyRecord(
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
        ttl: timedelta,
    ) -> bool:
        """Store the answer with an in-flight claim; False when the claim is gone."""
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
                expires_at=utcnow() + ttl,
            )
            .returning(IdempotencyKey.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def release(self, claim_id: str) -> None:
        """Forget an in-flight claim."""
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim_id,
                IdempotencyKey.status == IdempotencyStatus.IN_FLIGHT,
            )
        )
