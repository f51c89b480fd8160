from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, literal, select, update
from sqlalchemy.orm import with_expression

from app.core.db.keyset import Slice, SortKey, Window, keyset_page
from app.core.db.repository import Repository, insert_ignoring
from app.core.jobs import OutboxMessage, OutboxStatus
from app.domains.webhooks.models import (
    DeliveryStatus,
    DisabledReason,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.domains.webhooks.schemas import DeliveryFilter

DELIVERIES_NEWEST_FIRST = SortKey(WebhookDelivery.created_at, WebhookDelivery.id, descending=True)
JOB_KEY_PREFIX = "webhook.delivery:"


def job_key(delivery_id: int) -> str:
    """The dedup key of a delivery's job: one job per delivery, however often it is sent."""
    return f"{JOB_KEY_PREFIX}{delivery_id}"


# The due time of the delivery's job while it waits for an attempt: the job log schedules the
# retries (with jitter), so the delivery reads its schedule there rather than keep a copy.
NEXT_ATTEMPT_AT = with_expression(
    WebhookDelivery.next_attempt_at,
    select(OutboxMessage.available_at)
    .where(
        OutboxMessage.dedup_key == literal(JOB_KEY_PREFIX) + cast(WebhookDelivery.id, String),
        OutboxMessage.status == OutboxStatus.PENDING,
    )
    .scalar_subquery(),
)


class WebhookRepository(Repository[WebhookEndpoint]):
    model = WebhookEndpoint

    async def list_page(self, window: Window) -> Slice[WebhookEndpoint]:
        return await self.page(SortKey(WebhookEndpoint.id, WebhookEndpoint.id), window)

    async def subscribed(self, event_type: str) -> list[WebhookEndpoint]:
        active = await self.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.is_active.is_(True))
            .order_by(WebhookEndpoint.id)
        )
        return [endpoint for endpoint in active if event_type in endpoint.events]

    async def add_delivery(
        self, *, endpoint_id: int, event_id: str, event_type: str, payload: dict[str, Any]
    ) -> int | None:
        """The new delivery's id; None when this endpoint already has this event."""
        conflict = [WebhookDelivery.endpoint_id, WebhookDelivery.event_id]
        return await self.session.scalar(
            insert_ignoring(self.session, WebhookDelivery, conflict)
            .values(
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
            )
            .returning(WebhookDelivery.id)
        )

    async def add_new_delivery(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """A delivery of an event made for this endpoint alone (a ping)."""
        self.session.add(delivery)
        await self.session.flush()
        return delivery

    async def delivery(self, endpoint_id: int, delivery_id: int) -> WebhookDelivery | None:
        """The endpoint's delivery as it stands now, with its next attempt's due time."""
        return await self.session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
            .options(NEXT_ATTEMPT_AT)
            # Read again when the session holds it already: its job may have changed since.
            .execution_options(populate_existing=True)
        )

    async def mark_pending(self, delivery_id: int) -> None:
        """Back to pending, for its job to send again; the last failure shows until then."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status=DeliveryStatus.PENDING, delivered_at=None)
            .execution_options(synchronize_session=False)
        )

    async def delivery_with_endpoint(
        self, delivery_id: int
    ) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
        row = (
            await self.session.execute(
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def deliveries(
        self, endpoint_id: int, filters: DeliveryFilter, window: Window
    ) -> Slice[WebhookDelivery]:
        criteria = [
            getattr(WebhookDelivery, field) == value
            for field, value in filters.model_dump(exclude_none=True).items()
        ]
        statement = select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, *criteria
        )
        return await keyset_page(
            self.session, statement, DELIVERIES_NEWEST_FIRST, window, options=[NEXT_ATTEMPT_AT]
        )

    async def record_attempt(
        self,
        delivery_id: int,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str | None,
        response_body: str | None,
        delivered_at: datetime | None,
    ) -> None:
        # Counted here rather than copied from the job's attempt number, which an operator's
        # retry of a dead job starts again from one.
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                attempts=WebhookDelivery.attempts + 1,
                status=status,
                last_status_code=status_code,
                last_error=error,
                last_response_body=response_body,
                delivered_at=delivered_at,
            )
            .execution_options(synchronize_session=False)
        )

    async def count_dead(self, endpoint_id: int) -> int:
        """One more dead delivery in a row; how many there are now. Counted in one
        statement, so deliveries dying at once on several workers all count."""
        count = await self.session.scalar(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(dead_in_a_row=WebhookEndpoint.dead_in_a_row + 1)
            .returning(WebhookEndpoint.dead_in_a_row)
            .execution_options(synchronize_session=False)
        )
        return count or 0

    async def reset_dead(self, endpoint_id: int) -> None:
        """A delivery arrived: the run of dead ones is over. Writes only when there was one."""
        await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.dead_in_a_row > 0)
            .values(dead_in_a_row=0)
            .execution_options(synchronize_session=False)
        )

    async def disable(self, endpoint_id: int, reason: DisabledReason) -> bool:
        """Turn the endpoint off; False when it was off already, so only one worker reports
        it."""
        disabled = await self.session.scalar(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.is_active.is_(True))
            .values(is_active=False, disabled_reason=reason)
            .returning(WebhookEndpoint.id)
            .execution_options(synchronize_session=False)
        )
        return disabled is not None
