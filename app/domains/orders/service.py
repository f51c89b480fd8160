import hashlib
import json
from datetime import timedelta
from decimal import Decimal

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.db import utcnow
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.service import invalidate_after_commit
from app.domains.orders.exceptions import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    IllegalTransition,
    OrderNotFound,
    OrderTooLarge,
    OutOfStock,
    OvernightMinimum,
    UnknownItems,
)
from app.domains.orders.models import (
    IdempotencyStatus,
    Order,
    OrderLine,
    OrderStatus,
    PostalAddress,
    ShippingMethod,
)
from app.domains.orders.repository import IdempotencyKeyRepository, OrderRepository
from app.domains.orders.schemas import (
    OrderCreate,
    OrderFilter,
    OrderLineCreate,
    OrderRead,
    PlacedOrder,
)

# Flat shipping prices; an order's price is always computed here, never taken from a client.
SHIPPING_COSTS: dict[ShippingMethod, Decimal] = {
    ShippingMethod.STANDARD: Decimal("5.00"),
    ShippingMethod.EXPRESS: Decimal("15.00"),
    ShippingMethod.OVERNIGHT: Decimal("30.00"),
}
OVERNIGHT_MIN_SUBTOTAL = Decimal("50.00")
# The largest amount a NUMERIC(12, 2) column holds.
MAX_ORDER_TOTAL = Decimal("9999999999.99")

# How long a completed key answers repeats with its stored response.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# How long an in-flight key blocks repeats. A request that dies before it can release its
# key (a crash, a failed commit) leaves it busy this long at most, not for the whole TTL.
IDEMPOTENCY_LEASE = timedelta(seconds=60)
# A claim can meet a key that disappears before it is read (its request failed and released
# it); trying again a couple of times settles it.
CLAIM_ATTEMPTS = 3


class OrderService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        tracer: Tracer,
        cache: Cache,
    ) -> None:
        self.session = session
        self.cache = cache
        self.orders = OrderRepository(session)
        self.keys = IdempotencyKeyRepository(session, sessionmaker)
        self.tracer = tracer

    async def place(
        self, principal: Principal, data: OrderCreate, *, idempotency_key: str | None
    ) -> PlacedOrder:
        if idempotency_key is None:
            order = await self._place(principal.id, data)
            return PlacedOrder(OrderRead.model_validate(order), status_code=201, replayed=False)

        claim = await self._claim(principal.id, idempotency_key, request_fingerprint(data))
        if isinstance(claim, PlacedOrder):
            return claim
        try:
            read = OrderRead.model_validate(await self._place(principal.id, data))
            stored = await self.keys.complete(
                claim,
                response_status=201,
                response_body=read.model_dump(mode="json"),
                expires_at=utcnow() + IDEMPOTENCY_KEY_TTL,
            )
            if not stored:
                raise IdempotencyKeyInFlight
        except Exception:
            # Failed requests release their key so the client can retry with it. The
            # request's transaction ends first: SQLite has a single writer, and the release
            # writes through another connection, which would otherwise wait on this one.
            await self.session.rollback()
            await self.keys.release(claim)
            raise
        return PlacedOrder(read, status_code=201, replayed=False)

    async def _claim(self, user_id: int, key: str, fingerprint: str) -> str | PlacedOrder:
        """Own the key (its claim id), or the stored answer of the request that owned it."""
        for _ in range(CLAIM_ATTEMPTS):
            claim_id, record = await self.keys.claim(
                user_id=user_id, key=key, fingerprint=fingerprint, lease=IDEMPOTENCY_LEASE
            )
            if claim_id is not None:
                return claim_id
            if record is None:
                continue
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused
            if (
                record.status != IdempotencyStatus.COMPLETED
                or record.response_status is None
                or record.response_body is None
            ):
                raise IdempotencyKeyInFlight
            return PlacedOrder(
                OrderRead.model_validate(record.response_body),
                status_code=record.response_status,
                replayed=True,
            )
        raise IdempotencyKeyInFlight

    async def _place(self, user_id: int, data: OrderCreate) -> Order:
        with self.tracer.start_as_current_span("orders.place") as span:
            span.set_attribute("orders.lines", len(data.lines))
            span.set_attribute("orders.shipping", data.shipping.value)
            known = await self.orders.existing_item_ids(line.item_id for line in data.lines)
            unknown = {
                index: line.item_id
                for index, line in enumerate(data.lines)
                if line.item_id not in known
            }
            if unknown:
                raise UnknownItems(unknown)

            lines = await self._take_stock(data.lines)
            # Stock is part of every cached item read.
            invalidate_after_commit(self.session, self.cache, known)
            subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
            if data.shipping is ShippingMethod.OVERNIGHT and subtotal < OVERNIGHT_MIN_SUBTOTAL:
                raise OvernightMinimum(OVERNIGHT_MIN_SUBTOTAL, subtotal)
            shipping_cost = SHIPPING_COSTS[data.shipping]
            total = subtotal + shipping_cost
            if total > MAX_ORDER_TOTAL:
                raise OrderTooLarge(MAX_ORDER_TOTAL)

            order = Order(
                user_id=user_id,
                status=OrderStatus.PLACED,
                shipping=data.shipping,
                shipping_cost=shipping_cost,
                subtotal=subtotal,
                total=total,
                address=PostalAddress(
                    street=data.address.street,
                    city=data.address.city,
                    country=data.address.country,
                ),
                lines=lines,
            )
            return await self.orders.add(order)

    async def _take_stock(self, requested: list[OrderLineCreate]) -> list[OrderLine]:
        """Take every line's stock or raise; the request's rollback undoes a partial take.

        Rows are locked in ascending item id order, the same in every transaction, so two
        orders sharing items wait for each other instead of deadlocking.
        """
        taken: dict[int, OrderLine] = {}
        for index, line in sorted(enumerate(requested), key=lambda pair: pair[1].item_id):
            item = await self.orders.take_stock(line.item_id, line.quantity)
            if item is None:
                raise OutOfStock(item_id=line.item_id, line=index, quantity=line.quantity)
            taken[index] = OrderLine(
                item_id=line.item_id,
                item_name=item.name,
                quantity=line.quantity,
                unit_price=item.price,
                line_total=item.price * line.quantity,
            )
        return [taken[index] for index in range(len(requested))]

    async def get_for(self, principal: Principal, order_id: int) -> Order:
        order = await self.orders.get(order_id, user_id=_owner_filter(principal))
        if order is None:
            raise OrderNotFound
        return order

    async def list_page(
        self, principal: Principal, filters: OrderFilter, *, offset: int, limit: int
    ) -> tuple[list[Order], int]:
        return await self.orders.list_page(
            owner_id=_owner_filter(principal),
            user_id=filters.user_id,
            status=filters.status,
            offset=offset,
            limit=limit,
        )

    async def cancel(self, principal: Principal, order_id: int) -> Order:
        order = await self.get_for(principal, order_id)
        await self._transition(order, OrderStatus.CANCELLED, action="cancelled")
        for line in sorted(order.lines, key=lambda line: line.item_id or 0):
            # A line whose item has left the catalog has nowhere to return its stock to.
            if line.item_id is not None:
                await self.orders.return_stock(line.item_id, line.quantity)
        invalidate_after_commit(
            self.session, self.cache, [line.item_id for line in order.lines if line.item_id]
        )
        return order

    async def ship(self, principal: Principal, order_id: int) -> Order:
        order = await self.get_for(principal, order_id)
        await self._transition(order, OrderStatus.SHIPPED, action="shipped")
        return order

    async def _transition(self, order: Order, target: OrderStatus, *, action: str) -> None:
        if not await self.orders.change_status(order, source=OrderStatus.PLACED, target=target):
            current = await self.orders.current_status(order.id)
            raise IllegalTransition(current=current or order.status, action=action)


def _owner_filter(principal: Principal) -> int | None:
    """The one ownership rule: administrators acting with `orders:admin` see every order,
    everyone else only their own (the user id to filter on)."""
    if principal.is_admin and Scope.ORDERS_ADMIN in principal.scopes:
        return None
    return principal.id


def request_fingerprint(data: OrderCreate) -> str:
    """SHA-256 of the request as parsed: key order, spacing and defaults do not matter."""
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
