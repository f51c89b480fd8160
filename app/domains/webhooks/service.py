from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.base import utcnow
from app.core.errors import raises
from app.core.pagination import Page, PageParams, page_of
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.auth.schemas import Principal
from app.domains.orders.events import new_event_id
from app.domains.webhooks.delivery import WEBHOOK_DELIVERY, new_secret
from app.domains.webhooks.exceptions import (
    DeliveryInProgress,
    DeliveryNotFound,
    WebhookNotFound,
    WebhookTargetNotAllowed,
)
from app.domains.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.domains.webhooks.repository import WebhookRepository, job_key
from app.domains.webhooks.schemas import (
    DeliveryFilter,
    PingData,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryJob,
    WebhookDeliveryRead,
    WebhookEventType,
    WebhookRead,
    WebhookSecret,
    WebhookUpdate,
)
from app.domains.webhooks.targets import checked_address


class WebhookService:
    """Webhook endpoints as administrators manage them, and the record of their deliveries."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        audit: AuditTrail,
        allow_private_targets: bool,
        secret_overlap: timedelta,
    ) -> None:
        self.session = session
        self.webhooks = WebhookRepository(session)
        self.audit = audit
        self.allow_private_targets = allow_private_targets
        self.secret_overlap = secret_overlap

    @raises(WebhookTargetNotAllowed)
    async def create(self, principal: Principal, data: WebhookCreate) -> WebhookCreated:
        await checked_address(data.url, allow_private=self.allow_private_targets)
        endpoint = await self.webhooks.add(
            WebhookEndpoint(
                url=data.url,
                events=list(data.events),
                description=data.description,
                is_active=True,
                secret=new_secret(),
            )
        )
        await self._record(
            AuditAction.WEBHOOK_CREATED, principal, endpoint, data.model_dump(mode="json")
        )
        return WebhookCreated.model_validate(endpoint)

    @raises(PageParams.window)
    async def list_page(self, page: PageParams) -> Page[WebhookRead]:
        window = page.window("webhooks")
        return page_of(WebhookRead, await self.webhooks.list_page(window), window)

    @raises(WebhookNotFound)
    async def get(self, endpoint_id: int) -> WebhookRead:
        return WebhookRead.model_validate(await self._endpoint(endpoint_id))

    @raises(WebhookNotFound, WebhookTargetNotAllowed)
    async def update(
        self, principal: Principal, endpoint_id: int, changes: WebhookUpdate
    ) -> WebhookRead:
        endpoint = await self._endpoint(endpoint_id)
        if changes.url is not None:
            await checked_address(changes.url, allow_private=self.allow_private_targets)
        changes.apply_to(endpoint)
        if changes.is_active is not None:
            # Turned on again, or off by hand: the service's count and reason start afresh.
            endpoint.dead_in_a_row = 0
            endpoint.disabled_reason = None
        await self.session.flush()
        sent = changes.model_dump(mode="json", exclude_unset=True)
        await self._record(
            AuditAction.WEBHOOK_UPDATED, principal, endpoint, {"changes": sorted(sent)} | sent
        )
        return WebhookRead.model_validate(endpoint)

    @raises(WebhookNotFound)
    async def delete(self, principal: Principal, endpoint_id: int) -> None:
        endpoint = await self._endpoint(endpoint_id)
        await self._record(AuditAction.WEBHOOK_DELETED, principal, endpoint, {"url": endpoint.url})
        await self.webhooks.delete(endpoint)

    @raises(WebhookNotFound, PageParams.window)
    async def deliveries(
        self, endpoint_id: int, filters: DeliveryFilter, page: PageParams
    ) -> Page[WebhookDeliveryRead]:
        await self._endpoint(endpoint_id)
        scope = {"endpoint_id": endpoint_id} | filters.model_dump(mode="json", exclude_none=True)
        window = page.window("webhook-deliveries", scope)
        rows = await self.webhooks.deliveries(endpoint_id, filters, window)
        return page_of(WebhookDeliveryRead, rows, window)

    @raises(WebhookNotFound, DeliveryNotFound, DeliveryInProgress)
    async def redeliver(
        self, principal: Principal, endpoint_id: int, delivery_id: int
    ) -> WebhookDeliveryRead:
        """Send a delivery again, as it was: the same body and the same `webhook-id`, so a
        receiver that got it before recognises it."""
        endpoint = await self._endpoint(endpoint_id)
        if await self.webhooks.delivery(endpoint_id, delivery_id) is None:
            raise DeliveryNotFound
        job = WebhookDeliveryJob(delivery_id=delivery_id)
        if not await WEBHOOK_DELIVERY.requeue(self.session, job, dedup_key=job_key(delivery_id)):
            raise DeliveryInProgress
        await self.webhooks.mark_pending(delivery_id)
        record = await self.webhooks.delivery(endpoint_id, delivery_id)
        if record is None:
            raise DeliveryNotFound  # deleted with its endpoint in between
        await self._record(
            AuditAction.WEBHOOK_REDELIVERED,
            principal,
            endpoint,
            {"delivery_id": record.id, "event_id": record.event_id},
        )
        return WebhookDeliveryRead.model_validate(record)

    @raises(WebhookNotFound)
    async def ping(self, endpoint_id: int) -> WebhookDeliveryRead:
        """A signed `webhook.ping` for this endpoint alone, recorded as its deliveries are."""
        endpoint = await self._endpoint(endpoint_id)
        record = await self.webhooks.add_new_delivery(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                event_id=new_event_id(),
                event_type=WebhookEventType.PING,
                payload={
                    "type": WebhookEventType.PING.value,
                    "timestamp": utcnow().isoformat(),
                    "data": PingData(webhook_id=endpoint.id).model_dump(mode="json"),
                },
            )
        )
        await WEBHOOK_DELIVERY.enqueue(
            self.session, WebhookDeliveryJob(delivery_id=record.id), dedup_key=job_key(record.id)
        )
        found = await self.webhooks.delivery(endpoint.id, record.id)
        return WebhookDeliveryRead.model_validate(found)

    @raises(WebhookNotFound)
    async def rotate_secret(self, principal: Principal, endpoint_id: int) -> WebhookSecret:
        """A new signing secret; the replaced one keeps signing beside it for the overlap."""
        endpoint = await self._endpoint(endpoint_id)
        expires_at = utcnow() + self.secret_overlap
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = expires_at
        endpoint.secret = new_secret()
        await self.session.flush()
        await self._record(
            AuditAction.WEBHOOK_SECRET_ROTATED,
            principal,
            endpoint,
            {"previous_secret_expires_at": expires_at.isoformat()},
        )
        return WebhookSecret(secret=endpoint.secret)

    async def _record(
        self,
        action: AuditAction,
        principal: Principal,
        endpoint: WebhookEndpoint,
        details: dict[str, Any],
    ) -> None:
        # The signing secret never enters the log; URL, events and description do.
        await self.audit.record(
            action,
            actor_id=principal.id,
            target=("webhook", endpoint.id),
            details=details,
        )

    async def _endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        endpoint = await self.webhooks.get(endpoint_id)
        if endpoint is None:
            raise WebhookNotFound
        return endpoint
