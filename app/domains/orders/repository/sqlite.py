"""The order writes on the embedded SQLite: the same mechanics as PostgreSQL's functions, as
plain statements in one `BEGIN IMMEDIATE` transaction.

SQLite has one writer at a time. Taking the write lock first makes every check and write
that follows one atomic step, so nothing needs row locks, and a request never fails to
upgrade a read transaction into a write (SQLITE_BUSY_SNAPSHOT); waiting for the lock is
bounded by the connection's busy timeout. A second request with the same idempotency key
waits for the first to commit and then replays its answer.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal

from sqlalchemy import bindparam, case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.db.base import utcnow
from app.core.jobs import NewMessage, enqueue_on
from app.core.types import MAX_INT32
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditAction, AuditOrigin
from app.domains.items.models import Item
from app.domains.orders.models import IdempotencyKey, IdempotencyStatus, Order, OrderLine
from app.domains.orders.repository.writes import (
    ChangeOutcome,
    ChangeResult,
    KeyRecord,
    Outcome,
    Placement,
    PlacementResult,
    StatusChange,
    answer_for,
)

_TAKE = (
    update(Item)
    .where(Item.id == bindparam("item_id"))
    .values(stock=Item.stock - bindparam("quantity"), updated_at=bindparam("now"))
)
# Saturating at the column's maximum: the owner may have raised the stock since.
_GIVE_BACK = (
    update(Item)
    .where(Item.id == bindparam("item_id"))
    .values(
        stock=case(
            (Item.stock > MAX_INT32 - bindparam("quantity"), MAX_INT32),
            else_=Item.stock + bindparam("quantity"),
        ),
        updated_at=bindparam("now"),
    )
)


class SqliteOrderWrites:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def prices(self, item_ids: Sequence[int]) -> dict[int, Decimal]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(Item.id, Item.price).where(Item.id.in_(list(item_ids)))
            )
            return {row.id: row.price for row in rows}

    async def find_key(self, user_id: int, key: str) -> KeyRecord | None:
        async with self.engine.connect() as connection:
            return await _find_key(connection, user_id, key)

    async def place(self, placement: Placement) -> PlacementResult:
        p = placement
        async with self._immediate() as connection:
            if p.key is not None:
                record = await _find_key(connection, p.user_id, p.key)
                if record is not None:
                    answered = answer_for(record, p.fingerprint, utcnow())
                    if answered is not None:
                        return answered
                    await connection.execute(
                        delete(IdempotencyKey).where(
                            IdempotencyKey.user_id == p.user_id, IdempotencyKey.key == p.key
                        )
                    )
            refused, names = await self._check(connection, p)
            if refused is not None:
                return refused
            now = utcnow()
            await connection.execute(
                _TAKE,
                [
                    {"item_id": item_id, "quantity": quantity, "now": now}
                    for item_id, quantity in sorted(zip(p.item_ids, p.quantities, strict=True))
                ],
            )
            created = (
                await connection.execute(
                    insert(Order)
                    .values(
                        user_id=p.user_id,
                        status=p.order["status"],
                        shipping=p.priced.shipping.value,
                        shipping_cost=p.priced.shipping_cost,
                        subtotal=p.priced.subtotal,
                        total=p.priced.total,
                        address_street=p.street,
                        address_city=p.city,
                        address_country=p.country,
                    )
                    .returning(Order.id, Order.created_at)
                )
            ).one()
            await connection.execute(
                insert(OrderLine),
                [
                    {
                        "order_id": created.id,
                        "item_id": item_id,
                        "item_name": names[item_id],
                        "quantity": quantity,
                        "unit_price": unit_price,
                        "line_total": line_total,
                    }
                    for item_id, quantity, unit_price, line_total in zip(
                        p.item_ids,
                        p.quantities,
                        p.priced.unit_prices,
                        p.priced.line_totals,
                        strict=True,
                    )
                ],
            )
            body = p.order | {"id": created.id, "created_at": created.created_at.isoformat()}
            await _audit(
                connection,
                AuditAction.ORDER_PLACED,
                actor_id=p.user_id,
                order_id=created.id,
                origin=p.origin,
                details=p.audit_details,
            )
            await enqueue_on(
                connection,
                [
                    NewMessage(
                        p.event_topic, p.event | {"data": body}, f"{p.event['type']}:{created.id}"
                    ),
                    NewMessage(
                        p.confirmation_topic,
                        p.confirmation | {"order_id": created.id},
                        f"{p.confirmation_topic}:{created.id}",
                    ),
                ],
            )
            if p.key is not None:
                await connection.execute(
                    insert(IdempotencyKey).values(
                        # Random rather than sequential (models.IdempotencyKey).
                        id=uuid.uuid4().hex,
                        user_id=p.user_id,
                        key=p.key,
                        fingerprint=p.fingerprint,
                        status=IdempotencyStatus.COMPLETED,
                        response_status=201,
                        response_body=body,
                        created_at=now,
                        expires_at=now + p.key_ttl,
                    )
                )
        return PlacementResult(Outcome.PLACED, order_id=created.id, created_at=created.created_at)

    async def _check(
        self, connection: AsyncConnection, p: Placement
    ) -> tuple[PlacementResult | None, dict[int, str]]:
        """Whether every item is there, in stock and at the price the order was priced with:
        the refusal if not, and the items' names."""
        rows = {
            row.id: row
            for row in await connection.execute(
                select(Item.id, Item.name, Item.price, Item.stock).where(Item.id.in_(p.item_ids))
            )
        }
        unknown = {line: item for line, item in enumerate(p.item_ids) if item not in rows}
        if unknown:
            return PlacementResult(Outcome.UNKNOWN, unknown=unknown), {}
        by_item = sorted(range(len(p.item_ids)), key=lambda line: p.item_ids[line])
        short = [line for line in by_item if rows[p.item_ids[line]].stock < p.quantities[line]]
        if short:
            return PlacementResult(Outcome.SHORT, short_line=short[0]), {}
        if any(
            rows[item].price != price
            for item, price in zip(p.item_ids, p.priced.unit_prices, strict=True)
        ):
            prices = {item: rows[item].price for item in p.item_ids}
            return PlacementResult(Outcome.PRICE_CHANGED, prices=prices), {}
        return None, {item: rows[item].name for item in p.item_ids}

    async def change_status(self, change: StatusChange) -> ChangeResult:
        c = change
        owned = [Order.user_id == c.owner_id] if c.owner_id is not None else []
        async with self._immediate() as connection:
            now = utcnow()
            changed = await connection.execute(
                update(Order)
                .where(Order.id == c.order_id, Order.status == c.source, *owned)
                .values(status=c.target, updated_at=now)
                .returning(Order.id)
            )
            if changed.first() is None:
                status = await connection.scalar(
                    select(Order.status).where(Order.id == c.order_id, *owned)
                )
                if status is None:
                    return ChangeResult(ChangeOutcome.NOT_FOUND)
                return ChangeResult(ChangeOutcome.ILLEGAL, status)
            if c.returns_stock:
                # A line whose item has left the catalog has nowhere to return its stock to.
                lines = await connection.execute(
                    select(OrderLine.item_id, OrderLine.quantity)
                    .where(OrderLine.order_id == c.order_id, OrderLine.item_id.is_not(None))
                    .order_by(OrderLine.item_id)
                )
                returned = [
                    {"item_id": line.item_id, "quantity": line.quantity, "now": now}
                    for line in lines
                ]
                if returned:
                    await connection.execute(_GIVE_BACK, returned)
            await _audit(
                connection, c.action, actor_id=c.actor_id, order_id=c.order_id, origin=c.origin
            )
            await enqueue_on(connection, c.messages)
        return ChangeResult(ChangeOutcome.CHANGED, c.target)

    @asynccontextmanager
    async def _immediate(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds SQLite's write lock from its first statement."""
        async with self.engine.connect() as connection:
            # The driver begins no transaction of its own, so this one can say how to begin.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                await connection.exec_driver_sql("ROLLBACK")
                raise
            await connection.exec_driver_sql("COMMIT")


async def _find_key(connection: AsyncConnection, user_id: int, key: str) -> KeyRecord | None:
    row = (
        await connection.execute(
            select(
                IdempotencyKey.fingerprint,
                IdempotencyKey.status,
                IdempotencyKey.response_status,
                IdempotencyKey.response_body,
                IdempotencyKey.expires_at,
            ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        )
    ).first()
    if row is None:
        return None
    return KeyRecord(
        fingerprint=row.fingerprint,
        status=row.status,
        response_status=row.response_status,
        response_body=row.response_body,
        expires_at=row.expires_at,
    )


async def _audit(
    connection: AsyncConnection,
    action: AuditAction,
    *,
    actor_id: int,
    order_id: int,
    origin: AuditOrigin,
    details: dict[str, object] | None = None,
) -> None:
    await connection.execute(
        insert(AuditEvent).values(
            action=action,
            actor_id=actor_id,
            target_type="order",
            target_id=order_id,
            request_id=origin.request_id,
            ip=origin.ip,
            details=details or {},
        )
    )
