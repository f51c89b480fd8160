"""The job log's handlers and chores, bound where the application is composed.

app.core delivers messages without knowing what they mean, and each domain defines its own
message types; this module gives every type its handler, and the dispatchers the domains'
periodic chores, for the API (`app.main`), the dedicated worker (`app.worker`) and the
operator commands alike.
"""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.jobs import OutboxDispatcher
from app.core.jobs.email import EMAIL, LinkTokens, create_email_sender, email_handler
from app.domains.auth.password_resets import PASSWORD_RESET_REQUESTED, password_reset_mailer
from app.domains.orders.events import (
    ORDER_CONFIRMED,
    ORDER_EVENT,
    ORDER_SHIPPED,
    confirmation_email,
    mailer,
    shipped_email,
)
from app.domains.orders.idempotency import purge_chore
from app.domains.webhooks.delivery import WEBHOOK_DELIVERY, WebhookSender, fan_out


def register_handlers(
    outbox: OutboxDispatcher, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    send_email = email_handler(
        create_email_sender(settings),
        domain=settings.email_from.email.split("@")[-1],
        link_tokens=LinkTokens.from_settings(settings),
    )
    outbox.register(EMAIL, send_email)
    # Queued as data; rendered from the templates as they are sent.
    outbox.register(ORDER_CONFIRMED, mailer(confirmation_email, send_email))
    outbox.register(ORDER_SHIPPED, mailer(shipped_email, send_email))
    outbox.register(
        PASSWORD_RESET_REQUESTED,
        password_reset_mailer(sessionmaker, settings, announce=outbox.announce),
    )
    outbox.register(ORDER_EVENT, fan_out(sessionmaker, announce=outbox.announce))
    outbox.register(
        WEBHOOK_DELIVERY,
        WebhookSender(
            sessionmaker,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private_targets,
            disable_after=settings.webhook_disable_after_dead,
            announce=outbox.announce,
        ).deliver,
    )
    outbox.register_chore(purge_chore(sessionmaker))
