"""Password reset requests, answered before anything about the address is known.

A request for an address with an account and one for an address without must take the same
time, or the endpoint tells anyone which emails are registered. So the request does one
thing whatever the address: it queues a job in the job log, in its own transaction, and
answers. The job looks the address up afterwards and, for an active account, mints the link,
queues the email and records the audit event, in one transaction of its own. Nothing that
depends on the address happens before the answer.
"""

from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db.transactions import independent_transaction
from app.core.jobs import Delivery, MessageType, take_enqueued
from app.core.jobs.email import enqueue_email
from app.domains.audit.schemas import AuditAction
from app.domains.audit.service import AuditTrail
from app.domains.users.models import TokenPurpose
from app.domains.users.repository import UserRepository
from app.domains.users.service import AccountLinks, account_email


class PasswordResetJob(BaseModel):
    """A reset asked for `email`, with the request that asked (for its audit event)."""

    email: str
    request_id: str | None
    ip: str | None


PASSWORD_RESET_REQUESTED = MessageType("auth.password_reset_requested", PasswordResetJob)


async def queue_password_reset(session: AsyncSession, job: PasswordResetJob) -> None:
    """The request's whole part of a reset: the same one insert for every address."""
    await PASSWORD_RESET_REQUESTED.enqueue(session, job)


def password_reset_mailer(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    announce: Callable[[], Awaitable[None]],
) -> Callable[[PasswordResetJob, Delivery], Awaitable[None]]:
    """What handles a `PASSWORD_RESET_REQUESTED`: a link for an active account, else nothing.

    Delivered at least once, like every job: a rare repeat sends a second link, which voids
    the first, as a second request would.
    """

    async def handle(job: PasswordResetJob, _: Delivery) -> None:
        async with independent_transaction(sessionmaker) as session:
            user = await UserRepository(session).get_by_email(job.email)
            if user is None or not user.is_active:
                return
            link = await AccountLinks(session, settings).issue(user, TokenPurpose.PASSWORD_RESET)
            await enqueue_email(
                session, account_email("password_reset", "Reset your password", user, link)
            )
            audit = AuditTrail(session, sessionmaker, request_id=job.request_id, ip=job.ip)
            await audit.record(
                AuditAction.USER_PASSWORD_RESET_REQUESTED,
                actor_id=None,
                target=("user", user.id),
            )
            queued = take_enqueued(session)
        if queued:
            await announce()

    return handle
