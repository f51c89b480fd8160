"""The outbox delivered to the in-process SMTP server, and the links read from what arrives."""

import json
import re
from dataclasses import dataclass
from email.message import EmailMessage

from pydantic import NameEmail, SecretStr
from sqlalchemy import select

from app.core.jobs import OutboxDispatcher, OutboxMessage
from app.core.jobs.email import EMAIL, LinkTokens, SmtpEmailSender, email_handler
from app.core.resources import Resources
from app.domains.auth.password_resets import PASSWORD_RESET_REQUESTED, password_reset_mailer
from app.domains.orders.events import (
    ORDER_CONFIRMED,
    ORDER_SHIPPED,
    confirmation_email,
    mailer,
    shipped_email,
)
from tests.smtp import SmtpServer


def body(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content


def link_token(message: EmailMessage, page: str) -> str:
    """The token of the `page` link (`/reset-password`), the same in both parts."""
    pattern = rf"https?://[^/\s\"]+{re.escape(page)}\?token=([A-Za-z0-9_-]+)"
    text = re.search(pattern, body(message))
    html = re.search(pattern, body(message, "html"))
    assert text is not None, body(message)
    assert html is not None
    assert html.group(1) == text.group(1)
    return text.group(1)


async def _nothing() -> None:
    """The inbox delivers when asked; nothing needs waking."""


@dataclass
class Inbox:
    """What the service emailed, delivered through its outbox to a real SMTP server."""

    resources: Resources
    smtp: SmtpServer

    async def run_jobs(self) -> None:
        """Run the reset requests, which queue the emails they send."""
        jobs = self._dispatcher()
        jobs.register(
            PASSWORD_RESET_REQUESTED,
            password_reset_mailer(
                self.resources.sessionmaker, self.resources.settings, announce=_nothing
            ),
        )
        await jobs.run_once()

    async def deliver(self) -> list[EmailMessage]:
        # Reset requests are jobs that queue their email: they run first, as a dispatcher
        # would run them before the emails they queue.
        await self.run_jobs()
        sender = SmtpEmailSender(
            host="127.0.0.1",
            port=self.smtp.port,
            sender=NameEmail("Reference Service", "no-reply@example.com"),
            username=self.smtp.username,
            password=SecretStr(self.smtp.password),
            security="none",
        )
        dispatcher = self._dispatcher()
        links = LinkTokens.from_settings(self.resources.settings)
        send = email_handler(sender, domain="example.com", link_tokens=links)
        dispatcher.register(EMAIL, send)
        # The emails queued as data, rendered as they are sent (app.jobs registers the same).
        dispatcher.register(ORDER_CONFIRMED, mailer(confirmation_email, send))
        dispatcher.register(ORDER_SHIPPED, mailer(shipped_email, send))
        delivered = await dispatcher.run_once()
        return [(await self.smtp.next_message()).message for _ in range(delivered)]

    def _dispatcher(self) -> OutboxDispatcher:
        return OutboxDispatcher(
            self.resources.sessionmaker,
            batch_size=100,
            max_attempts=1,
            poll_interval=3600,
            lease_seconds=30,
            backoff_base=1,
            backoff_max=1,
        )

    async def one_to(self, address: str, subject: str) -> EmailMessage:
        """Deliver what is pending and return the one message with this subject to `address`."""
        matching = [
            message
            for message in await self.deliver()
            if message["To"] == address and message["Subject"] == subject
        ]
        assert len(matching) == 1, [(m["To"], m["Subject"]) for m in matching]
        return matching[0]


async def job_log_text(resources: Resources) -> str:
    """Everything the job log stores, as a database reader would see it."""
    async with resources.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return "\n".join(
            json.dumps([row.topic, row.dedup_key, row.payload, row.last_error]) for row in rows
        )


def stored_link_tokens(text: str, page: str) -> set[str]:
    """The `token` of every `page` link in stored text, whatever it stands for."""
    return set(re.findall(rf"{re.escape(page)}\?token=([A-Za-z0-9_-]+)", text))
