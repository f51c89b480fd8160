"""Endpoints that keep failing are turned off.

After WEBHOOK_DISABLE_AFTER_DEAD dead deliveries in a row an endpoint stops receiving
events: its reason reads `failing`, an audit event records it, and every active
administrator gets an email (through the job log, so it exists only if the change
commits). A delivery that arrives ends the run; an administrator turning the endpoint on
again starts the count afresh.
"""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.jobs.email import enqueue_email
from app.core.jobs.templates import render_email
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.users.repository import UserRepository
from app.domains.webhooks.models import DeliveryStatus, DisabledReason, WebhookEndpoint
from app.domains.webhooks.repository import WebhookRepository


async def count_outcome(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    endpoint: WebhookEndpoint,
    status: DeliveryStatus,
    *,
    disable_after: int,
) -> bool:
    """Count a delivery's outcome against its endpoint, in the transaction that records it;
    whether that turned the endpoint off (and so queued emails to announce after commit)."""
    webhooks = WebhookRepository(session)
    if status is DeliveryStatus.DELIVERED:
        await webhooks.reset_dead(endpoint.id)
        return False
    if status is not DeliveryStatus.DEAD:
        return False
    dead = await webhooks.count_dead(endpoint.id)
    if dead < disable_after or not await webhooks.disable(endpoint.id, DisabledReason.FAILING):
        return False
    await AuditTrail(session, sessionmaker).record(
        AuditAction.WEBHOOK_DISABLED,
        actor_id=None,
        target=("webhook", endpoint.id),
        details={"reason": DisabledReason.FAILING.value, "dead_in_a_row": dead},
    )
    for address in await UserRepository(session).active_admin_emails():
        await enqueue_email(
            session,
            render_email(
                "webhook_disabled",
                to=address,
                subject=f"Webhook {endpoint.id} turned off: its deliveries keep failing",
                webhook_id=endpoint.id,
                url=endpoint.url,
                dead=dead,
            ),
        )
    return True
