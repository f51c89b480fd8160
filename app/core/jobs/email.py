"""Outgoing email: the message, the senders, and the job log message type that delivers it.

Request code never talks to SMTP. It calls `enqueue_email` inside its transaction and the
outbox dispatcher sends the message after the commit, through the SMTP server at `SMTP_HOST`
or, when none is configured, by logging it.

A link that grants something (a password reset, an email verification) must not sit in the
job log, where anyone who reads the database, or a backup of it, could use it. The queued
message holds a seed where the link's token goes (`SealedToken`); the token is derived from
that seed with a key from SECRET_KEY only as the email is sent (`LinkTokens`), the same on
every attempt, so a retried delivery sends the link the first one would have.
"""

import base64
import email.message
import email.utils
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal, Protocol, Self

import aiosmtplib
from pydantic import BaseModel, ConfigDict, EmailStr, Field, NameEmail, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.jobs import Delivery, MessageType
from app.core.security import key_id

logger = logging.getLogger(__name__)

_SEED_BYTES = 32


class SealedToken(BaseModel):
    """Where an emailed link's token goes: the seed it is derived from (which the message's
    text holds in its place) and the id of the signing key that derives it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$")
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")


class UnknownLinkKey(LookupError):
    """The key that sealed a queued link is configured no more (SECRET_KEY rotated and the old
    one dropped from PREVIOUS_SECRET_KEYS): the link cannot be sent."""


class LinkTokens:
    """Derives the tokens of emailed links from their seeds.

    The key is SECRET_KEY's, through an HMAC of its own, so a token is never also valid as
    anything else the key signs; keys in PREVIOUS_SECRET_KEYS still derive the links queued
    before a rotation.
    """

    def __init__(self, secret: str, previous: Iterable[str] = ()) -> None:
        self._current = key_id(secret)
        self._keys = {key_id(old): self._derive_key(old) for old in previous}
        self._keys[self._current] = self._derive_key(secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            settings.secret_key.get_secret_value(),
            [old.get_secret_value() for old in settings.previous_secret_keys],
        )

    @staticmethod
    def _derive_key(secret: str) -> bytes:
        return hmac.new(secret.encode(), b"emailed-link-token", hashlib.sha256).digest()

    def seal(self) -> tuple[SealedToken, str]:
        """A fresh seed to store with the message, and the token it stands for."""
        sealed = SealedToken(seed=secrets.token_urlsafe(_SEED_BYTES), key_id=self._current)
        return sealed, self.token(sealed)

    def token(self, sealed: SealedToken) -> str:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise UnknownLinkKey(
                f"the link was sealed with signing key {sealed.key_id}, which is no longer "
                "configured (SECRET_KEY or PREVIOUS_SECRET_KEYS)"
            )
        digest = hmac.new(key, sealed.seed.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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
    # Tokens whose seeds stand in the text and HTML for them until the message is sent.
    sealed: tuple[SealedToken, ...] = ()

    def unsealed(self, tokens: LinkTokens) -> "EmailMessage":
        """The message as it is sent: each seed replaced by the token it stands for."""
        text, html = self.text, self.html
        for sealed in self.sealed:
            token = tokens.token(sealed)
            text = text.replace(sealed.seed, token)
            html = html.replace(sealed.seed, token) if html is not None else None
        return self.model_copy(update={"text": text, "html": html, "sealed": ()})


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
    sender: EmailSender, *, domain: str, link_tokens: LinkTokens | None = None
) -> Callable[[EmailMessage, Delivery], Awaitable[None]]:
    """What delivers an `EMAIL` message; `link_tokens` opens the sealed links of those that
    carry some.

    The Message-ID is the one stored with the message, so the rare repeat after a lost lease
    reaches the recipient as the same message and mail clients fold it away.
    """

    async def deliver(message: EmailMessage, delivery: Delivery) -> None:
        # Messages queued before keys were stored keep the id they were first sent with.
        key = message.key if "key" in delivery.payload else f"outbox-{delivery.id}"
        if message.sealed:
            if link_tokens is None:
                raise UnknownLinkKey("the message carries a sealed link and no key was given")
            message = message.unsealed(link_tokens)
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
