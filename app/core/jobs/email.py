"""Outgoing email: the message, the senders, and the job log message type that delivers it.

Request code never talks to SMTP. It calls `enqueue_email` inside its transaction and the
outbox dispatcher sends the message after the commit, through the SMTP server at `SMTP_HOST`
or, when none is configured, by logging it.
"""

import email.message
import email.utils
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

import aiosmtplib
from pydantic import BaseModel, ConfigDict, EmailStr, Field, NameEmail, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.jobs import Delivery, MessageType

logger = logging.getLogger(__name__)


class EmailMessage(BaseModel):
    """An email to one recipient, stored as the outbox payload of the `email` topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: EmailStr
    subject: str = Field(min_length=1, max_length=998)
    text: str
    html: str | None = None
    # The Message-ID's local part, chosen at random when the message is queued: unique
    # across databases and deployments (an outbox id is not), and the same on every retry,
    # because it is stored with the queued message.
    key: str = Field(default_factory=lambda: secrets.token_hex(16), pattern=r"^[0-9a-f]{32}$")


EMAIL = MessageType("email", EmailMessage)


class EmailSender(Protocol):
    async def send(self, message: EmailMessage, *, message_id: str) -> None: ...


class SmtpEmailSender:
    """Sends through an SMTP server with aiosmtplib, one connection per message."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: NameEmail,
        username: str | None = None,
        password: SecretStr | None = None,
        security: Literal["starttls", "tls", "none"] = "starttls",
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        # An empty SMTP_USERNAME in .env means no login, as an unset one does.
        self._username = username or None
        self._password = password if username else None
        self.security = security
        self._timeout = timeout

    async def send(self, message: EmailMessage, *, message_id: str) -> None:
        await aiosmtplib.send(
            build_mime(message, sender=self.sender, message_id=message_id),
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password.get_secret_value() if self._password else None,
            use_tls=self.security == "tls",
            # Required, not opportunistic: a server that cannot upgrade must not get the
            # credentials or the message in clear text.
            start_tls=self.security == "starttls",
            timeout=self._timeout,
        )


class LogEmailSender:
    """Logs each message instead of sending it, for development without an SMTP server.

    Only the recipient and subject are logged: bodies can carry links and tokens.
    """

    async def send(self, message: EmailMessage, *, message_id: str) -> None:
        logger.info(
            "email to %s: %s (SMTP_HOST is unset, so it was logged, not sent)",
            message.to,
            message.subject,
            extra={"email_to": message.to, "email_subject": message.subject},
        )


def build_mime(
    message: EmailMessage, *, sender: NameEmail, message_id: str
) -> email.message.EmailMessage:
    mime = email.message.EmailMessage()
    mime["From"] = str(sender)
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Message-ID"] = message_id
    mime["Date"] = email.utils.formatdate(localtime=False)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def create_email_sender(settings: Settings) -> EmailSender:
    if not settings.smtp_host:
        logger.info("SMTP_HOST is unset: outgoing emails are logged, not sent")
        return LogEmailSender()
    return SmtpEmailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.email_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        security=settings.smtp_security,
        timeout=settings.smtp_timeout,
    )


def email_handler(
    sender: EmailSender, *, domain: str
) -> Callable[[EmailMessage, Delivery], Awaitable[None]]:
    """What delivers an `EMAIL` message.

    The Message-ID is the one stored with the message, so the rare repeat after a lost lease
    reaches the recipient as the same message and mail clients fold it away.
    """

    async def deliver(message: EmailMessage, delivery: Delivery) -> None:
        # Messages queued before keys were stored keep the id they were first sent with.
        key = message.key if "key" in delivery.payload else f"outbox-{delivery.id}"
        await sender.send(message, message_id=f"<{key}@{domain}>")

    return deliver


async def enqueue_email(
    session: AsyncSession, message: EmailMessage, *, dedup_key: str | None = None
) -> None:
    """Queue an email in the caller's transaction; it is sent only if that commits."""
    # A fresh key per queued message, so one message queued twice is two emails to mail
    # clients too.
    fresh = message.model_copy(update={"key": secrets.token_hex(16)})
    await EMAIL.enqueue(session, fresh, dedup_key=dedup_key)
