"""Webhook endpoints for order events, and their deliveries (administrators)."""

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from app.core.deps import PageParamsDep
from app.core.errors import error_responses
from app.core.http.openapi import operation_id, sent_body
from app.core.http.routes import ApiRoute
from app.core.pagination import Page
from app.core.types import MAX_ID
from app.domains.auth.dependencies import get_admin
from app.domains.webhooks.dependencies import WebhookAdmin, WebhookServiceDep
from app.domains.webhooks.schemas import (
    DeliveryFilter,
    DeliveryHeaders,
    OrderEventPayload,
    PingPayload,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookSecret,
    WebhookUpdate,
)
from app.domains.webhooks.service import WebhookService

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=ApiRoute)
# The requests the service sends to registered endpoints, declared under the document's
# top-level `webhooks` (app.api.router): what a receiver must accept, held to the same
# breaking-change gate as the paths.
events = APIRouter(tags=["webhooks"], generate_unique_id_function=operation_id)

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="the webhook's id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="the delivery's id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an endpoint; the response holds its signing secret, shown only here",
    responses=error_responses(get_admin, WebhookService.create),
)
async def create_webhook(
    data: WebhookCreate,
    principal: WebhookAdmin,
    webhooks: WebhookServiceDep,
    request: Request,
    response: Response,
) -> WebhookCreated:
    created = await webhooks.create(principal, data)
    response.headers["Location"] = request.app.url_path_for("read_webhook", webhook_id=created.id)
    return created


@router.get(
    "",
    summary="List webhook endpoints",
    responses=error_responses(get_admin, WebhookService.list_page),
)
async def list_webhooks(
    _: WebhookAdmin, page: PageParamsDep, webhooks: WebhookServiceDep
) -> Page[WebhookRead]:
    return await webhooks.list_page(page)


@router.get(
    "/{webhook_id}",
    summary="Read a webhook endpoint",
    responses=error_responses(get_admin, WebhookService.get),
)
async def read_webhook(
    webhook_id: WebhookId, _: WebhookAdmin, webhooks: WebhookServiceDep
) -> WebhookRead:
    return await webhooks.get(webhook_id)


@router.patch(
    "/{webhook_id}",
    summary="Change an endpoint's URL, events or description, or pause it",
    responses=error_responses(get_admin, WebhookService.update),
)
async def update_webhook(
    webhook_id: WebhookId,
    changes: WebhookUpdate,
    principal: WebhookAdmin,
    webhooks: WebhookServiceDep,
) -> WebhookRead:
    return await webhooks.update(principal, webhook_id, changes)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an endpoint and its deliveries",
    responses=error_responses(get_admin, WebhookService.delete),
)
async def delete_webhook(
    webhook_id: WebhookId, principal: WebhookAdmin, webhooks: WebhookServiceDep
) -> None:
    await webhooks.delete(principal, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    summary="An endpoint's deliveries, newest first: why each last failed, when it is next tried",
    responses=error_responses(get_admin, WebhookService.deliveries),
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    _: WebhookAdmin,
    filters: Annotated[DeliveryFilter, Query()],
    page: PageParamsDep,
    webhooks: WebhookServiceDep,
) -> Page[WebhookDeliveryRead]:
    return await webhooks.deliveries(webhook_id, filters, page)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a delivery again, with the same body and webhook-id",
    responses=error_responses(get_admin, WebhookService.redeliver),
)
async def redeliver_webhook_delivery(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    principal: WebhookAdmin,
    webhooks: WebhookServiceDep,
) -> WebhookDeliveryRead:
    return await webhooks.redeliver(principal, webhook_id, delivery_id)


@router.post(
    "/{webhook_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send the endpoint a signed webhook.ping event, recorded as a delivery",
    responses=error_responses(get_admin, WebhookService.ping),
)
async def ping_webhook(
    webhook_id: WebhookId, _: WebhookAdmin, webhooks: WebhookServiceDep
) -> WebhookDeliveryRead:
    return await webhooks.ping(webhook_id)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Issue a new signing secret; the old one also signs until the overlap ends",
    responses=error_responses(get_admin, WebhookService.rotate_secret),
)
async def rotate_webhook_secret(
    webhook_id: WebhookId, principal: WebhookAdmin, webhooks: WebhookServiceDep
) -> WebhookSecret:
    return await webhooks.rotate_secret(principal, webhook_id)


# What the service sends: the bodies are declared in the document, never parsed here.
SENT_PAYLOADS = (OrderEventPayload, PingPayload)
Signed = Annotated[DeliveryHeaders, Header()]
RECEIVED = (
    "Any 2xx: delivered. Any other status, no complete answer within WEBHOOK_TIMEOUT_SECONDS "
    "or a redirect (never followed): tried again with backoff, up to OUTBOX_MAX_ATTEMPTS"
)


@events.post(
    "order.placed",
    summary="An order was placed",
    response_description=RECEIVED,
    openapi_extra=sent_body(OrderEventPayload),
)
async def order_placed(headers: Signed) -> None:
    """Sent once the order's transaction commits; `data` is the order as placed."""


@events.post(
    "order.cancelled",
    summary="An order was cancelled",
    response_description=RECEIVED,
    openapi_extra=sent_body(OrderEventPayload),
)
async def order_cancelled(headers: Signed) -> None:
    """Sent once the cancellation commits; `data` is the order, `status` `cancelled`."""


@events.post(
    "order.shipped",
    summary="An order was shipped",
    response_description=RECEIVED,
    openapi_extra=sent_body(OrderEventPayload),
)
async def order_shipped(headers: Signed) -> None:
    """Sent once the shipping commits; `data` is the order, `status` `shipped`."""


@events.post(
    "webhook.ping",
    summary="An administrator pinged the endpoint",
    response_description=RECEIVED,
    openapi_extra=sent_body(PingPayload),
)
async def webhook_ping(headers: Signed) -> None:
    """Sent by POST /api/v1/webhooks/{id}/ping, to every endpoint whatever its events."""
