import logging
from pathlib import Path

import aiosmtplib
import pytest
from pydantic import NameEmail, SecretStr

from app.core.config import Settings
from app.core.jobs import Delivery
from app.core.jobs.email import (
    EMAIL,
    EmailMessage,
    LinkTokens,
    LogEmailSender,
    SmtpEmailSender,
    UnknownLinkKey,
    create_email_sender,
    email_handler,
    enqueue_email,
)
from app.core.resources import Resources
from tests.conftest import make_settings
from tests.core.jobs.outbox_helpers import stored
from tests.smtp import SmtpServer

SENDER = NameEmail("Reference Service", "no-reply@example.org")
WELCOME = EmailMessage(
    to="ada@example.com",
    subject="Welcome aboard",
    text="Hello Ada, your account is ready.",
    html="<p>Hello Ada, your account is ready.</p>",
)


def smtp_sender(smtp: SmtpServer, **overrides: object) -> SmtpEmailSender:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "sender": SENDER,
        "username": smtp.username,
        "password": SecretStr(smtp.password),
        "security": "none",
    }
    options.update(overrides)
    return SmtpEmailSender(**options)  # type: ignore[arg-type]


def settings_with(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(None, tmp_path / "unused.db", **overrides)


async def test_smtp_sender_delivers_the_message_with_its_headers(smtp: SmtpServer) -> None:
    await smtp_sender(smtp).send(WELCOME, message_id="<outbox-7@example.org>")

    received = await smtp.next_message()
    assert received.mail_from == "no-reply@example.org"
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.login == "mailer"
    message = received.message
    assert message["From"] == "Reference Service <no-reply@example.org>"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Welcome aboard"
    assert message["Message-ID"] == "<outbox-7@example.org>"
    assert message["Date"] is not None
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    assert text_part.get_content().strip() == "Hello Ada, your account is ready."
    assert html_part.get_content().strip() == "<p>Hello Ada, your account is ready.</p>"


async def test_smtp_sender_with_wrong_credentials_fails(smtp: SmtpServer) -> None:
    sender = smtp_sender(smtp, password=SecretStr("wrong"))
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await sender.send(WELCOME, message_id="<outbox-1@example.org>")
    assert smtp.inbox.empty()


async def test_starttls_is_required_not_opportunistic(smtp: SmtpServer) -> None:
    # The test server offers no STARTTLS: the sender must refuse rather than log in in clear.
    sender = smtp_sender(smtp, security="starttls")
    with pytest.raises(aiosmtplib.SMTPException, match="STARTTLS"):
        await sender.send(WELCOME, message_id="<outbox-1@example.org>")
    assert smtp.inbox.empty()


async def test_a_message_queued_before_keys_were_stored_keeps_its_outbox_message_id(
    smtp: SmtpServer,
) -> None:
    handler = EMAIL.handler(email_handler(smtp_sender(smtp), domain="example.org"))
    payload = WELCOME.model_dump(mode="json", exclude={"key"})

    await handler(Delivery(id=42, topic="email", payload=payload, attempt=1, last_attempt=False))

    received = await smtp.next_message()
    assert received.message["Message-ID"] == "<outbox-42@example.org>"
    assert received.message["Subject"] == "Welcome aboard"


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, EmailMessage]] = []

    async def send(self, message: EmailMessage, *, message_id: str) -> None:
        self.sent.append((message_id, message))


async def test_message_ids_are_unique_per_message_and_stable_across_retries(
    resources: Resources,
) -> None:
    async with resources.sessionmaker.begin() as session:
        await enqueue_email(session, WELCOME)
        await enqueue_email(session, WELCOME)
    first, second = await stored(resources.sessionmaker)
    sender = RecordingSender()
    handler = EMAIL.handler(email_handler(sender, domain="example.org"))

    for attempt in (1, 2):
        await handler(
            Delivery(
                id=7, topic="email", payload=first.payload, attempt=attempt, last_attempt=False
            )
        )
    # Another database numbers its outbox from 1 too: the same id must not give the same
    # Message-ID, nor may one message queued twice.
    await handler(
        Delivery(id=7, topic="email", payload=second.payload, attempt=1, last_attempt=False)
    )

    (retry_one, message), (retry_two, _), (other, _) = sender.sent
    assert retry_one == retry_two
    assert retry_one != other
    local_part, _, domain = retry_one.partition("@")
    assert local_part.startswith("<")
    assert len(local_part) > 30
    assert domain == "example.org>"
    assert message.model_dump(exclude={"key"}) == WELCOME.model_dump(exclude={"key"})


CURRENT_KEY = "current-signing-key-0123456789abcdefghij"
OLD_KEY = "retired-signing-key-0123456789abcdefghij"


def sealed_reset(tokens: LinkTokens) -> tuple[EmailMessage, str]:
    """A queued reset email as the account code builds it, and the token it stands for."""
    sealed, token = tokens.seal()
    link = f"https://shop.example/reset-password?token={sealed.seed}"
    message = EmailMessage(
        to="ada@example.com",
        subject="Reset your password",
        text=f"Open {link}",
        html=f'<a href="{link}">Reset</a>',
        sealed=(sealed,),
    )
    return message, token


async def test_a_sealed_link_is_opened_only_as_it_is_sent_the_same_every_attempt(
    resources: Resources,
) -> None:
    tokens = LinkTokens(CURRENT_KEY)
    message, token = sealed_reset(tokens)
    async with resources.sessionmaker.begin() as session:
        await enqueue_email(session, message)
    [queued] = await stored(resources.sessionmaker)
    assert token not in str(queued.payload)
    sender = RecordingSender()
    handler = EMAIL.handler(email_handler(sender, domain="example.org", link_tokens=tokens))

    for attempt in (1, 2):
        await handler(
            Delivery(
                id=1, topic="email", payload=queued.payload, attempt=attempt, last_attempt=False
            )
        )

    for _, sent in sender.sent:
        assert sent.text == f"Open https://shop.example/reset-password?token={token}"
        assert sent.html == f'<a href="https://shop.example/reset-password?token={token}">Reset</a>'
        assert sent.sealed == ()
    assert len(token) >= 32


async def test_a_link_sealed_before_a_key_rotation_opens_while_the_old_key_is_kept() -> None:
    message, token = sealed_reset(LinkTokens(OLD_KEY))
    delivery = Delivery(
        id=1, topic="email", payload=message.model_dump(mode="json"), attempt=1, last_attempt=False
    )
    sender = RecordingSender()
    rotated = LinkTokens(CURRENT_KEY, previous=[OLD_KEY])
    await EMAIL.handler(email_handler(sender, domain="example.org", link_tokens=rotated))(delivery)
    assert token in sender.sent[0][1].text

    dropped = LinkTokens(CURRENT_KEY)
    for handler in (
        email_handler(sender, domain="example.org", link_tokens=dropped),
        email_handler(sender, domain="example.org"),
    ):
        with pytest.raises(UnknownLinkKey):
            await EMAIL.handler(handler)(delivery)
    assert len(sender.sent) == 1


async def test_email_topic_handler_rejects_a_malformed_payload() -> None:
    handler = EMAIL.handler(email_handler(LogEmailSender(), domain="example.org"))
    malformed = Delivery(
        id=1, topic="email", payload={"subject": "x"}, attempt=1, last_attempt=False
    )
    with pytest.raises(ValueError, match="to"):
        await handler(malformed)


def test_smtp_host_selects_the_smtp_sender(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        smtp_host="mail.example.com",
        smtp_port=465,
        smtp_security="tls",
        email_from="Ops <ops@example.com>",
    )
    sender = create_email_sender(settings)
    assert isinstance(sender, SmtpEmailSender)
    assert (sender.host, sender.port, sender.security) == ("mail.example.com", 465, "tls")
    assert str(sender.sender) == "Ops <ops@example.com>"


async def test_without_smtp_host_emails_are_logged_without_their_body(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sender = create_email_sender(settings_with(tmp_path, smtp_host=None))
    assert isinstance(sender, LogEmailSender)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.core.jobs.email"):
        await sender.send(WELCOME, message_id="<outbox-1@example.org>")

    [record] = caplog.records
    assert "ada@example.com" in record.getMessage()
    assert "Welcome aboard" in record.getMessage()
    assert "your account is ready" not in record.getMessage()
