"""Placing, reading, cancelling and shipping orders."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.core.types import MAX_ID
from app.domains.auth.dependencies import get_admin, get_principal, get_writer
from app.domains.orders.dependencies import (
    IdempotencyKeyHeader,
    OrderAdmin,
    OrderReader,
    OrderServiceDep,
    OrderWriter,
    order_rate_limit,
)
from app.domains.orders.schemas import OrderCreate, OrderFilter, OrderRead
from app.domains.orders.service import OrderService

router = APIRouter(prefix="/orders", tags=["orders"], route_class=ApiRoute)

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="the order's id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Place an order, priced on the server; stock is taken for every line or none",
    dependencies=[Depends(order_rate_limit)],
    responses=error_responses(get_writer, OrderService.place),
)
async def place_order(
    data: OrderCreate,
    principal: OrderWriter,
    orders: OrderServiceDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> OrderRead:
    placed = await orders.place(principal, data, idempotency_key=idempotency_key)
    response.status_code = placed.status_code
    response.headers["Location"] = request.app.url_path_for("read_order", order_id=placed.order.id)
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return placed.order


@router.get(
    "",
    summary="List your orders, newest first (administrators: every order)",
    responses=error_responses(get_principal, OrderService.list_page),
)
async def list_orders(
    principal: OrderReader,
    filters: Annotated[OrderFilter, Query()],
    page: PageParamsDep,
    orders: OrderServiceDep,
) -> Page[OrderRead]:
    return await orders.list_page(principal, filters, page)


@router.get(
    "/{order_id}",
    summary="Read one of your orders (administrators: any order)",
    responses=error_responses(get_principal, OrderService.get_for),
)
async def read_order(
    order_id: OrderId, principal: OrderReader, orders: OrderServiceDep
) -> OrderRead:
    return await orders.get_for(principal, order_id)


@router.post(
    "/{order_id}/cancel",
    summary="Cancel a placed order; its stock returns to the catalog",
    responses=error_responses(get_writer, OrderService.cancel),
)
async def cancel_order(
    order_id: OrderId, principal: OrderWriter, orders: OrderServiceDep
) -> OrderRead:
    return await orders.cancel(principal, order_id)


@router.post(
    "/{order_id}/ship",
    summary="Mark a placed order shipped (administrators)",
    responses=error_responses(get_admin, OrderService.ship),
)
async def ship_order(
    order_id: OrderId, principal: OrderAdmin, orders: OrderServiceDep
) -> OrderRead:
    return await orders.ship(principal, order_id)
