from decimal import Decimal

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth.schemas import Principal, Scope
from app.domains.items.schemas import ReservedItem, StockLine
from app.domains.items.service import ItemService
from app.domains.orders.events import OrderEvents
from app.domains.orders.exceptions import (
    IllegalTransition,
    OrderNotFound,
    OrderTooLarge,
    OvernightMinimum,
    RepeatedItem,
)
from app.domains.orders.idempotency import IdempotencyKeys
from app.domains.orders.models import (
    Order,
    OrderLine,
    OrderStatus,
    PostalAddress,
    ShippingMethod,
)
from app.domains.orders.repository import OrderRepository
from app.domains.orders.schemas import OrderCreate, OrderFilter, OrderRead, PlacedOrder

# Flat shipping prices; an order's price is always computed here, never taken from a client.
SHIPPING_COSTS: dict[ShippingMethod, Decimal] = {
    ShippingMethod.STANDARD: Decimal("5.00"),
    ShippingMethod.EXPRESS: Decimal("15.00"),
    ShippingMethod.OVERNIGHT: Decimal("30.00"),
}
OVERNIGHT_MIN_SUBTOTAL = Decimal("50.00")
# The largest amount a NUMERIC(12, 2) column holds.
MAX_ORDER_TOTAL = Decimal("9999999999.99")
_TRANSITION_ACTIONS = {
    OrderStatus.CANCELLED: AuditAction.ORDER_CANCELLED,
    OrderStatus.SHIPPED: AuditAction.ORDER_SHIPPED,
}


class OrderService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        items: ItemService,
        tracer: Tracer,
        audit: AuditTrail,
    ) -> None:
        self.session = session
        self.orders = OrderRepository(session)
        self.keys = IdempotencyKeys(session, sessionmaker)
        self.events = OrderEvents(session)
        self.items = items
        self.tracer = tracer
        self.audit = audit

    @raises(
        ItemService.reserve, IdempotencyKeys.claim, RepeatedItem, OvernightMinimum, OrderTooLarge
    )
    async def place(
        self, principal: Principal, data: OrderCreate, *, idempotency_key: str | None
    ) -> PlacedOrder:
        if idempotency_key is None:
            return PlacedOrder(await self._place(principal, data), 201, replayed=False)
        claim = await self.keys.claim(principal.id, idempotency_key, data)
        if isinstance(claim, PlacedOrder):
            return claim
        placed = PlacedOrder(await self._place(principal, data), 201, replayed=False)
        await self.keys.complete(claim, placed)
        return placed

    async def _place(self, principal: Principal, data: OrderCreate) -> OrderRead:
        with self.tracer.start_as_current_span("orders.place") as span:
            span.set_attribute("orders.lines", len(data.lines))
            span.set_attribute("orders.shipping", data.shipping.value)
            ensure_one_line_per_item(data)
            reserved = await self.items.reserve(
                [StockLine(item_id=line.item_id, quantity=line.quantity) for line in data.lines]
            )
            order = await self.orders.add(price_order(principal.id, data, reserved))
            await self.audit.record(
                AuditAction.ORDER_PLACED,
                actor_id=principal.id,
                target=("order", order.id),
                details={"total": str(order.total), "lines": len(order.lines)},
            )
            placed = OrderRead.model_validate(order)
        await self.events.placed(placed, customer_email=principal.email)
        return placed

    @raises(OrderNotFound)
    async def get_for(self, principal: Principal, order_id: int) -> OrderRead:
        return OrderRead.model_validate(await self._order_for(principal, order_id))

    @raises(PageParams.window)
    async def list_page(
        self, principal: Principal, filters: OrderFilter, page: PageParams
    ) -> Page[OrderRead]:
        owner_id = owner_filter(principal)
        # The owner is part of the binding: one user's cursor means nothing to another.
        window = page.window("orders", filters.model_dump() | {"owner_id": owner_id})
        rows = await self.orders.list_page(
            owner_id=owner_id, user_id=filters.user_id, status=filters.status, window=window
        )
        return page_of(OrderRead, rows, window)

    @raises(OrderNotFound, IllegalTransition)
    async def cancel(self, principal: Principal, order_id: int) -> OrderRead:
        order = await self._order_for(principal, order_id)
        await self._transition(principal, order, OrderStatus.CANCELLED, action="cancelled")
        # A line whose item has left the catalog has nowhere to return its stock to.
        await self.items.release(
            [
                StockLine(item_id=line.item_id, quantity=line.quantity)
                for line in order.lines
                if line.item_id is not None
            ]
        )
        cancelled = OrderRead.model_validate(order)
        await self.events.cancelled(cancelled)
        return cancelled

    @raises(OrderNotFound, IllegalTransition)
    async def ship(self, principal: Principal, order_id: int) -> OrderRead:
        order = await self._order_for(principal, order_id)
        await self._transition(principal, order, OrderStatus.SHIPPED, action="shipped")
        shipped = OrderRead.model_validate(order)
        await self.events.shipped(shipped)
        return shipped

    async def _order_for(self, principal: Principal, order_id: int) -> Order:
        order = await self.orders.get_with_lines(order_id, user_id=owner_filter(principal))
        if order is None:
            raise OrderNotFound
        return order

    async def _transition(
        self, principal: Principal, order: Order, target: OrderStatus, *, action: str
    ) -> None:
        if not await self.orders.change_status(order, source=OrderStatus.PLACED, target=target):
            current = await self.orders.current_status(order.id)
            raise IllegalTransition(current=current or order.status, action=action)
        await self.audit.record(
            _TRANSITION_ACTIONS[target], actor_id=principal.id, target=("order", order.id)
        )


@raises(RepeatedItem)
def ensure_one_line_per_item(data: OrderCreate) -> None:
    """One line per item keeps pricing and stock accounting unambiguous."""
    lines_of: dict[int, list[int]] = {}
    for index, line in enumerate(data.lines):
        lines_of.setdefault(line.item_id, []).append(index)
    for item_id, lines in lines_of.items():
        if len(lines) > 1:
            raise RepeatedItem(item_id=item_id, lines=lines)


@raises(OvernightMinimum, OrderTooLarge)
def price_order(user_id: int, data: OrderCreate, reserved: list[ReservedItem]) -> Order:
    """The order for `data`, priced from what the catalog reserved, never from the client."""
    lines = [
        OrderLine(
            item_id=item.item_id,
            item_name=item.name,
            quantity=item.quantity,
            unit_price=item.price,
            line_total=item.price * item.quantity,
        )
        for item in reserved
    ]
    subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
    if data.shipping is ShippingMethod.OVERNIGHT and subtotal < OVERNIGHT_MIN_SUBTOTAL:
        raise OvernightMinimum(OVERNIGHT_MIN_SUBTOTAL, subtotal)
    shipping_cost = SHIPPING_COSTS[data.shipping]
    total = subtotal + shipping_cost
    if total > MAX_ORDER_TOTAL:
        raise OrderTooLarge(MAX_ORDER_TOTAL)
    return Order(
        user_id=user_id,
        status=OrderStatus.PLACED,
        shipping=data.shipping,
        shipping_cost=shipping_cost,
        subtotal=subtotal,
        total=total,
        address=PostalAddress(
            street=data.address.street, city=data.address.city, country=data.address.country
        ),
        lines=lines,
    )


def owner_filter(principal: Principal) -> int | None:
    """The one ownership rule: administrators acting with `orders:admin` see every order,
    everyone else only their own (the user id to filter on)."""
    if principal.is_admin and Scope.ORDERS_ADMIN in principal.scopes:
        return None
    return principal.id
