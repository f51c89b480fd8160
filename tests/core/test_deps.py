from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import select

from app.core.config import Settings
from app.core.deps import SessionDep, uses_platform
from app.core.jobs import OutboxMessage
from app.core.jobs.email import EmailMessage, enqueue_email
from app.core.resources import Resources
from app.main import create_app
from tests.conftest import asgi_client, make_settings
from tests.smtp import SmtpServer


class SignupFailed(Exception):
    pass


@pytest.fixture
async def mail_client(
    migrated: Settings, resources: Resources, smtp: SmtpServer
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose own dispatcher delivers to the test SMTP server.

    It polls once an hour, so a prompt delivery can only come from the wake after commit.
    """
    settings = make_settings(
        migrated.database_url,
        migrated.sqlite_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_username=smtp.username,
        smtp_password=smtp.password,
        smtp_security="none",
        email_from="Reference Service <no-reply@example.org>",
        outbox_enabled=True,
        outbox_poll_interval=3600,
    )
    application: FastAPI = create_app(settings)

    @application.post("/signups", status_code=202)
    async def sign_up(session: SessionDep, address: str, fail: bool = False) -> None:
        await enqueue_email(session, EmailMessage(to=address, subject="Welcome", text="Hello."))
        await session.flush()
        if fail:
            raise SignupFailed(address)

    @uses_platform
    async def outbox_running(platform: Resources) -> bool:
        return platform.outbox.running

    @application.get("/outbox")
    async def outbox_state(running: Annotated[bool, Depends(outbox_running)]) -> dict[str, bool]:
        return {"running": running}

    async with application.router.lifespan_context(application), asgi_client(application) as c:
        yield c


async def test_an_email_enqueued_by_a_request_is_sent_after_its_commit(
    mail_client: httpx.AsyncClient, smtp: SmtpServer, resources: Resources
) -> None:
    response = await mail_client.post("/signups", params={"address": "ada@example.com"})
    assert response.status_code == 202

    received = await smtp.next_message()
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.message["From"] == "Reference Service <no-reply@example.org>"
    assert received.message["Subject"] == "Welcome"
    async with resources.sessionmaker() as session:
        [message] = await session.scalars(select(OutboxMessage))
    # Globally unique yet the same on every retry: a key stored with the queued message.
    assert received.message["Message-ID"] == f"<{message.payload['key']}@example.org>"


async def test_an_email_from_a_failed_request_is_never_sent(
    mail_client: httpx.AsyncClient, smtp: SmtpServer, resources: Resources
) -> None:
    failed = await mail_client.post(
        "/signups", params={"address": "ghost@example.com", "fail": "true"}
    )
    assert failed.status_code == 500
    await mail_client.post("/signups", params={"address": "ada@example.com"})

    # Messages go out in order, so had the failed one been kept it would arrive first.
    received = await smtp.next_message()
    assert received.rcpt_tos == ["ada@example.com"]
    async with resources.sessionmaker() as session:
        messages = list(await session.scalars(select(OutboxMessage)))
    assert [m.payload["to"] for m in messages] == ["ada@example.com"]


async def test_a_platform_dependency_reads_the_running_apps_objects(
    mail_client: httpx.AsyncClient,
) -> None:
    assert (await mail_client.get("/outbox")).json() == {"running": True}


def test_with_the_outbox_disabled_a_process_runs_no_dispatcher(resources: Resources) -> None:
    # The shared test app runs with OUTBOX_ENABLED=false.
    assert not resources.settings.outbox_enabled
    assert not resources.outbox.running
