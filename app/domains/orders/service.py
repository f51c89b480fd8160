"""Placing, reading, cancelling and shipping orders.

Placing an order: the rules price it (app.domains.orders.rules) from the prices this process
knows (prices.PriceHints; a read when it knows none), then the database does the rest in
one transaction, one call on PostgreSQL (repository.writes): the idempotency key, the
stock, the order, its lines, its audit event and its job log messages, all or nothing. It
answers with an outcome, which is read here into the answer or the error; a price that
changed meanwhile has the order priced again with the prices it names. Once committed, the
job log is announced and the cached reads of the items are forgotten in one round trip.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.cache import Cache
from app.core.db.base import utcnow
from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.audit.schemas import AuditAction, AuditOrigin
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.exceptions import OutOfStock, UnknownItems
from app.domains.items.service import forget_cached
from app.domains.orders.events import OrderEventType, event_message, shipping_message
from app.domains.orders.exceptions import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    IllegalTransition,
    OrderNotFound,
    OrderTooLarge,
    OvernightMinimum,
    RepeatedItem,
)
from app.domains.orders.idempotency import request_fingerprint
from app.domains.orders.models import OrderStatus
from app.domains.orders.placement import new_placement
from app.domains.orders.prices import PriceHints
from app.domains.orders.repository import OrderRepository, OrderWrites
from app.domains.orders.repository.writes import (
    ChangeOutcome,
    Outcome,
    Placement,
    PlacementResult,
    StatusChange,
    answer_for,
)
from app.domains.orders.rules import (
    CHANGEABLE,
    RETURNS_STOCK,
    PricedOrder,
    ensure_one_line_per_item,
    price_order,
)
from app.domains.orders.schemas import OrderCreate, OrderFilter, OrderRead, PlacedOrder
from app.domains.users.repository import UserRepository

_CHANGES = {
    OrderStatus.CANCELLED: (AuditAction.ORDER_CANCELLED, OrderEventType.CANCELLED, "cancelled"),
    OrderStatus.SHIPPED: (AuditAction.ORDER_SHIPPED, OrderEventType.SHIPPED, "shipped"),
}
# What the rules can refuse before the database is asked; with an idempotency key, a
# repeat of a request that was placed is answered from its key instead.
_REFUSED_BEFORE_PLACING = (RepeatedItem, UnknownItems, OvernightMinimum, OrderTooLarge)


class OrderService:
    def __init__(
        self,
        *,
        writes: OrderWrites,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: Cache,
        announce: Callable[[], Awaitable[None]],
        tracer: Tracer,
        hints: PriceHints,
        origin: AuditOrigin,
    ) -> None:
        self.writes = writes
        self.sessionmaker = sessionmaker
        self.cache = cache
        # Wakes the job log's dispatchers once a change that queued messages has committed.
        self.announce = announce
        self.tracer = tracer
        self.hints = hints
        self.origin = origin

    @raises(
        UnknownItems,
        OutOfStock,
        IdempotencyKeyReused,
        IdempotencyKeyInFlight,
        RepeatedItem,
        OvernightMinimum,
        OrderTooLarge,
    )
    async def place(
        self, principal: Principal, data: OrderCreate, *, idempotency_key: str | None
    ) -> PlacedOrder:
        with self.tracer.start_as_current_span("orders.place") as span:
            span.set_attribute("orders.lines", len(data.lines))
            span.set_attribute("orders.shipping", data.shipping.value)
            fingerprint = request_fingerprint(data) if idempotency_key is not None else None
            try:
                ensure_one_line_per_item(data.lines)
                priced = await self._price(data)
            except _REFUSED_BEFORE_PLACING:
                if idempotency_key is None:
                    raise
                replayed = await self._stored_answer(principal.id, idempotency_key, fingerprint)
                if replayed is None:
                    raise
                return replayed
            # Each repeat means a price of these items changed, and committed, since the
            # call before: the loop ends unless prices change faster than an order places.
            while True:
                placement = new_placement(
                    principal,
                    data,
                    priced,
                    key=idempotency_key,
                    fingerprint=fingerprint,
                    origin=self.origin,
                )
                result = await self.writes.place(placement)
                if result.outcome is not Outcome.PRICE_CHANGED or result.prices is None:
                    break
                self.hints.learn(result.prices)
                # The database's own prices: a refusal by the rules now stands.
                priced = price_order(data.lines, data.shipping, result.prices)
        return await self._answer(result, placement, data)

    async def _price(self, data: OrderCreate) -> PricedOrder:
        """The order priced with the prices known here, or read when some are not; a refusal
        computed from known prices is confirmed with fresh ones before it stands."""
        item_ids = [line.item_id for line in data.lines]
        prices = self.hints.known(item_ids)
        fresh = len(prices) < len(item_ids)
        if fresh:
            prices = await self._read_prices(item_ids)
        try:
            return price_order(data.lines, data.shipping, prices)
        except (OvernightMinimum, OrderTooLarge):
            if fresh:
                raise
        return price_order(data.lines, data.shipping, await self._read_prices(item_ids))

    @raises(UnknownItems)
    async def _read_prices(self, item_ids: list[int]) -> dict[int, Decimal]:
        prices = await self.writes.prices(item_ids)
        self.hints.learn(prices)
        unknown = {line: item for line, item in enumerate(item_ids) if item not in prices}
        if unknown:
            raise UnknownItems(unknown)
        return prices

    async def _answer(
        self, result: PlacementResult, placement: Placement, data: OrderCreate
    ) -> PlacedOrder:
        match result.outcome:
            case Outcome.PLACED:
                order = OrderRead.model_validate(
                    placement.order | {"id": result.order_id, "created_at": result.created_at}
                )
                await self.announce()
                await forget_cached(self.cache, placement.item_ids)
                return PlacedOrder(order, 201, replayed=False)
            case Outcome.REPLAY:
                return _replayed(result)
            case Outcome.IN_FLIGHT:
                raise IdempotencyKeyInFlight
            case Outcome.KEY_REUSED:
                raise IdempotencyKeyReused
            case Outcome.UNKNOWN if result.unknown:
                self.hints.forget(result.unknown.values())
                raise UnknownItems(result.unknown)
            case Outcome.SHORT if result.short_line is not None:
                line = data.lines[result.short_line]
                raise OutOfStock(
                    item_id=line.item_id, line=result.short_line, quantity=line.quantity
                )
        raise RuntimeError(f"unexpected placement outcome {result!r}")

    async def _stored_answer(
        self, user_id: int, key: str, fingerprint: str | None
    ) -> PlacedOrder | None:
        """The answer a key already holds, for a request the rules refused; None when the
        key holds none (the refusal then stands)."""
        record = await self.writes.find_key(user_id, key)
        answered = answer_for(record, fingerprint, utcnow()) if record is not None else None
        if answered is None:
            return None
        if answered.outcome is Outcome.KEY_REUSED:
            raise IdempotencyKeyReused
        if answered.outcome is Outcome.IN_FLIGHT:
            raise IdempotencyKeyInFlight
        return _replayed(answered)

    @raises(OrderNotFound)
    async def get_for(self, principal: Principal, order_id: int) -> OrderRead:
        async with self.sessionmaker() as session:
            return await _order_for(session, principal, order_id)

    @raises(PageParams.window)
    async def list_page(
        self, principal: Principal, filters: OrderFilter, page: PageParams
    ) -> Page[OrderRead]:
        owner_id = owner_filter(principal)
        # The owner is part of the binding: one user's cursor means nothing to another.
        window = page.window("orders", filters.model_dump() | {"owner_id": owner_id})
        async with self.sessionmaker() as session:
            rows = await OrderRepository(session).list_page(
                owner_id=owner_id, user_id=filters.user_id, status=filters.status, window=window
            )
            return page_of(OrderRead, rows, window)

    @raises(OrderNotFound, IllegalTransition)
    async def cancel(self, principal: Principal, order_id: int) -> OrderRead:
        return await self._change(principal, order_id, OrderStatus.CANCELLED)

    @raises(OrderNotFound, IllegalTransition)
    async def ship(self, principal: Principal, order_id: int) -> OrderRead:
        return await self._change(principal, order_id, OrderStatus.SHIPPED)

    async def _change(self, principal: Principal, order_id: int, target: OrderStatus) -> OrderRead:
        """Move a placed order to `target`, in one transaction with its stock, audit event,
        order event and email (app.domains.orders.rules says which)."""
        action, event_type, done = _CHANGES[target]
        async with self.sessionmaker() as session:
            order = await _order_for(session, principal, order_id)
            # Shipped by an administrator: the address is the customer's, not the caller's.
            customer = (
                await UserRepository(session).get(order.user_id)
                if target is OrderStatus.SHIPPED
                else None
            )
        if order.status is not CHANGEABLE:
            raise IllegalTransition(current=order.status, action=done)
        changed = order.model_copy(update={"status": target})
        messages = [event_message(event_type, changed)]
        # An erased account has no address any more: its order ships without an email.
        if customer is not None and customer.deleted_at is None:
            messages.append(shipping_message(customer.email, changed))
        returns_stock = target in RETURNS_STOCK
        result = await self.writes.change_status(
            StatusChange(
                order_id=order.id,
                owner_id=owner_filter(principal),
                source=CHANGEABLE,
                target=target,
                returns_stock=returns_stock,
                actor_id=principal.id,
                action=action,
                origin=self.origin,
                messages=messages,
            )
        )
        if result.outcome is ChangeOutcome.NOT_FOUND:
            raise OrderNotFound
        if result.outcome is ChangeOutcome.ILLEGAL:
            raise IllegalTransition(current=result.status or "changed", action=done)
        await self.announce()
        if returns_stock:
            # A line whose item has left the catalog returned nothing to it.
            await forget_cached(
                self.cache, [line.item_id for line in order.lines if line.item_id is not None]
            )
        return changed


@raises(OrderNotFound)
async def _order_for(session: AsyncSession, principal: Principal, order_id: int) -> OrderRead:
    order = await OrderRepository(session).get_with_lines(order_id, user_id=owner_filter(principal))
    if order is None:
        raise OrderNotFound
    return OrderRead.model_validate(order)


def _replayed(result: PlacementResult) -> PlacedOrder:
    if result.replay_status is None or result.replay_body is None:
        raise RuntimeError(f"a replay without its answer: {result!r}")
    return PlacedOrder(
        OrderRead.model_validate(result.replay_body), result.replay_status, replayed=True
    )


def owner_filter(principal: Principal) -> int | None:
    """The one ownership rule: administrators acting with `orders:admin` see every order,
    everyone else only their own (the user id to filter on)."""
    if principal.is_admin and Scope.ORDERS_ADMIN in principal.scopes:
        return None
    return principal.id
