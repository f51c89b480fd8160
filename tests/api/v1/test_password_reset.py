import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI
from pydantic import NameEmail, SecretStr
from sqlalchemy import update

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.jobs import OutboxDispatcher
from app.core.jobs.email import EMAIL, LinkTokens, SmtpEmailSender, email_handler
from app.core.resources import Resources
from app.domains.users.models import AccountToken, User
from app.main import create_app
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.commands import cli
from tests.conftest import asgi_client, variant
from tests.factories import (
    Account,
    Inbox,
    audit_events,
    bearer,
    body,
    create_api_key,
    job_log_text,
    link_token,
    log_in,
    register,
    stored_link_tokens,
    token,
    unique_email,
    user,
)
from tests.problems import assert_problem
from tests.statements import counted_statements

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "a-brand-new-secret-9"
# Headers that legitimately differ between any two responses.
PER_RESPONSE = {"x-request-id", "date"}


async def reset_token(client: httpx.AsyncClient, inbox: Inbox, email: str) -> str:
    response = await client.post(RESET, json={"email": email})
    assert response.status_code == 202, response.text
    message = await inbox.one_to(email, "Reset your password")
    return link_token(message, "/reset-password")


async def test_a_reset_link_sets_a_new_password_and_signs_out_everywhere(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await user(client)
    other = await log_in(Account(account.id, account.email, account.password), client)
    token_value = await reset_token(client, inbox, account.email)
    assert len(token_value) >= 32

    confirmed = await client.post(
        CONFIRM, json={"token": token_value, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204

    for session in (account, other):
        assert (await client.get(ME, headers=session.headers)).status_code == 401
        refresh = await client.post(REFRESH, json={"refresh_token": session.refresh_token})
        assert refresh.status_code == 401
    assert (await token(client, account.email, account.password)).status_code == 401
    assert (await token(client, account.email, NEW_PASSWORD)).status_code == 200
    notice = await inbox.one_to(account.email, "Your password was reset")
    assert "every session" in body(notice)
    assert NEW_PASSWORD not in body(notice)


async def test_a_reset_revokes_every_api_key_of_the_account(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    # Someone registers another person's address and mints keys before its owner arrives;
    # the owner recovers the account through the emailed link, and the keys die with it.
    squatter = await user(client)
    keys = [
        (await create_api_key(client, squatter, "profile", "items:write"))["key"],
        (await create_api_key(client, squatter, "orders:read"))["key"],
    ]
    for key in keys:
        assert (await client.get(ME, headers=bearer(key))).status_code == 200
    bystander = await user(client)
    kept = (await create_api_key(client, bystander, "profile"))["key"]

    token_value = await reset_token(client, inbox, squatter.email)
    confirmed = await client.post(
        CONFIRM, json={"token": token_value, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204

    for key in keys:
        assert_problem(await client.get(ME, headers=bearer(key)), 401)
    assert (await client.get(ME, headers=bearer(kept))).status_code == 200
    owner = await log_in(Account(squatter.id, squatter.email, NEW_PASSWORD), client)
    listed = await client.get("/api/v1/users/me/api-keys", headers=owner.headers)
    assert listed.json()["items"] == []
    revoked = await audit_events(resources, action="api_key.revoked")
    assert len(revoked) == 2
    assert {event.details["reason"] for event in revoked} == {"password_reset"}
    notice = await inbox.one_to(squatter.email, "Your password was reset")
    assert "API key" in body(notice)


async def test_the_job_log_holds_no_link_that_resets_the_password(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    account = await register(client)
    await inbox.deliver()  # the welcome email
    assert (await client.post(RESET, json={"email": account.email})).status_code == 202
    await inbox.run_jobs()
    queued = await job_log_text(resources)
    message = await inbox.one_to(account.email, "Reset your password")
    token_value = link_token(message, "/reset-password")
    delivered = await job_log_text(resources)

    # What a database reader finds where the link goes does not reset anything...
    for text in (queued, delivered):
        assert token_value not in text
        for stored in stored_link_tokens(text, "/reset-password"):
            taken = await client.post(CONFIRM, json={"token": stored, "new_password": "taken-1234"})
            assert_problem(taken, 400, "urn:problem-type:invalid-token")
    assert stored_link_tokens(queued, "/reset-password")
    # ...while the emailed link does.
    confirmed = await client.post(
        CONFIRM, json={"token": token_value, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204


async def test_a_reset_email_that_died_sends_its_working_link_once_retried(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources, migrated: Settings
) -> None:
    account = await register(client)
    await inbox.deliver()  # the welcome email
    assert (await client.post(RESET, json={"email": account.email})).status_code == 202
    await inbox.run_jobs()
    # The SMTP server refuses the login: the only attempt fails and the message is dead.
    refused = SmtpEmailSender(
        host="127.0.0.1",
        port=inbox.smtp.port,
        sender=NameEmail("Reference Service", "no-reply@example.com"),
        username=inbox.smtp.username,
        password=SecretStr("not-the-password"),
        security="none",
    )
    failing = OutboxDispatcher(
        resources.sessionmaker,
        batch_size=10,
        max_attempts=1,
        poll_interval=3600,
        lease_seconds=30,
        backoff_base=1,
        backoff_max=1,
    )
    links = LinkTokens.from_settings(resources.settings)
    failing.register(EMAIL, email_handler(refused, domain="example.com", link_tokens=links))
    assert await failing.run_once() == 1

    listed = await cli(migrated, "outbox", "list")
    retried = await cli(migrated, "outbox", "retry", "--all")
    assert "email" in listed[1]
    assert "SMTPAuthenticationError" in listed[1]
    assert retried[1].strip() == "1 dead message(s) queued again"

    message = await inbox.one_to(account.email, "Reset your password")
    token_value = link_token(message, "/reset-password")
    for output in (*listed, *retried, await job_log_text(resources)):
        assert token_value not in str(output)
    confirmed = await client.post(
        CONFIRM, json={"token": token_value, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204


async def test_the_email_links_to_the_public_base_url_in_text_and_html(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register(client)
    await client.post(RESET, json={"email": account.email})
    message = await inbox.one_to(account.email, "Reset your password")
    token_value = link_token(message, "/reset-password")
    assert f"http://127.0.0.1:8000/reset-password?token={token_value}" in body(message)
    assert f'href="http://127.0.0.1:8000/reset-password?token={token_value}"' in body(
        message, "html"
    )
    assert "30 minutes" in body(message)


async def test_a_token_works_once(client: httpx.AsyncClient, inbox: Inbox) -> None:
    account = await register(client)
    token_value = await reset_token(client, inbox, account.email)
    first = await client.post(CONFIRM, json={"token": token_value, "new_password": NEW_PASSWORD})
    assert first.status_code == 204
    again = await client.post(CONFIRM, json={"token": token_value, "new_password": "other-pass-8"})
    assert_problem(again, 400, "urn:problem-type:invalid-token")
    assert (await token(client, account.email, NEW_PASSWORD)).status_code == 200


async def test_of_two_concurrent_confirms_exactly_one_succeeds(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register(client)
    token_value = await reset_token(client, inbox, account.email)
    responses = await asyncio.gather(
        *(
            client.post(CONFIRM, json={"token": token_value, "new_password": f"{NEW_PASSWORD}{n}"})
            for n in range(5)
        )
    )
    assert sorted(response.status_code for response in responses) == [204, 400, 400, 400, 400]


async def test_a_newer_request_voids_the_older_link(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register(client)
    older = await reset_token(client, inbox, account.email)
    newer = await reset_token(client, inbox, account.email)
    stale = await client.post(CONFIRM, json={"token": older, "new_password": NEW_PASSWORD})
    assert_problem(stale, 400, "urn:problem-type:invalid-token")
    fresh = await client.post(CONFIRM, json={"token": newer, "new_password": NEW_PASSWORD})
    assert fresh.status_code == 204


async def test_an_expired_or_unknown_token_is_refused(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    account = await register(client)
    token_value = await reset_token(client, inbox, account.email)
    async with resources.sessionmaker.begin() as session:
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for candidate in (token_value, "x" * 43, "not-a-token"):
        response = await client.post(
            CONFIRM, json={"token": candidate, "new_password": NEW_PASSWORD}
        )
        problem = assert_problem(response, 400, "urn:problem-type:invalid-token")
        assert candidate not in response.text
        assert problem["title"] == "Invalid token"
    assert (await token(client, account.email, account.password)).status_code == 200


async def test_a_weak_password_is_refused_and_the_link_still_works(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register(client)
    token_value = await reset_token(client, inbox, account.email)
    for weak in ("short1", "no-digits-at-all", "x1" * 65):
        response = await client.post(CONFIRM, json={"token": token_value, "new_password": weak})
        problem = assert_problem(response, 422, "urn:problem-type:validation-error")
        assert problem["errors"][0]["loc"] == ["body", "new_password"]
        assert weak not in response.text
    ok = await client.post(CONFIRM, json={"token": token_value, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204


async def test_unknown_emails_get_the_very_same_answer_and_no_email(
    app: FastAPI, client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    account = await register(client)
    inactive = await register(client)
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(User).where(User.id == inactive.id).values(is_active=False))
    await inbox.deliver()  # the welcome emails

    answers = []
    # From addresses of their own, so the per-address limit reports the same remainder.
    for number, email in enumerate([account.email, unique_email("ghost"), inactive.email]):
        async with asgi_client(app, peer=f"127.0.2.{number + 1}") as peer:
            answers.append(await peer.post(RESET, json={"email": email}))
    known, unknown, _ = answers
    for response in answers:
        assert response.status_code == 202
        assert response.content == known.content
        assert {k: v for k, v in response.headers.items() if k not in PER_RESPONSE} == {
            k: v for k, v in known.headers.items() if k not in PER_RESPONSE
        }
    assert unknown.json() == {
        "detail": "If an account uses this email, a link to reset its password is on its way."
    }
    delivered = await inbox.deliver()
    assert [message["To"] for message in delivered] == [account.email]
    requested = await audit_events(resources, action="user.password_reset_requested")
    assert [event.target_id for event in requested] == [account.id]


async def test_a_request_does_the_same_work_for_every_address(
    app: FastAPI, client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    """Response time cannot tell a known address from an unknown one: the request itself
    does identical work for both, and the lookup, the link and the email happen after the
    answer, in the job log."""
    account = await register(client)
    inactive = await register(client)
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(User).where(User.id == inactive.id).values(is_active=False))
    await inbox.deliver()  # the welcome emails

    work = []
    for number, email in enumerate([account.email, unique_email("ghost"), inactive.email]):
        async with asgi_client(app, peer=f"127.0.4.{number + 1}") as peer:
            with counted_statements(resources) as seen:
                assert (await peer.post(RESET, json={"email": email})).status_code == 202
        work.append(seen)
    assert work[0] == work[1] == work[2]
    assert not any("users" in statement for statement in work[0])
    # The job that did the rest sent the one email there was to send.
    delivered = await inbox.deliver()
    assert [message["To"] for message in delivered] == [account.email]


async def test_the_services_own_dispatcher_mails_the_link(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await register(client)
    assert (await client.post(RESET, json={"email": account.email})).status_code == 202
    # The job, then the email it queued (and the welcome email), through the handlers the
    # API and the worker register.
    assert await resources.outbox.run_once() == 2
    assert await resources.outbox.run_once() == 1
    [event] = await audit_events(resources, action="user.password_reset_requested")
    assert event.target_id == account.id


async def test_reset_requests_are_limited_per_address_and_per_email(
    migrated: Settings, client: httpx.AsyncClient
) -> None:
    application = create_app(variant(migrated, rate_limit_password_reset="2/hour"))
    async with (
        application.router.lifespan_context(application),
        asgi_client(application, "127.0.3.1") as first,
        asgi_client(application, "127.0.3.2") as second,
    ):
        target = unique_email()
        for _ in range(2):
            assert (await first.post(RESET, json={"email": target})).status_code == 202
        # The email's budget is spent, whoever asks next.
        blocked = await second.post(RESET, json={"email": target})
        assert_problem(blocked, 429, "urn:problem-type:rate-limit-exceeded")
        assert int(blocked.headers["retry-after"]) > 0
        # And the first address has spent its own, whatever email it asks about.
        other = await first.post(RESET, json={"email": unique_email()})
        assert other.status_code == 429
        assert (await second.post(RESET, json={"email": unique_email()})).status_code == 202


async def test_malformed_requests_are_422(client: httpx.AsyncClient) -> None:
    for payload in ({}, {"email": "nope"}, {"email": "a@example.com", "extra": 1}):
        assert_problem(await client.post(RESET, json=payload), 422)
    for payload in ({"token": "t"}, {"token": "", "new_password": NEW_PASSWORD}):
        assert_problem(await client.post(CONFIRM, json=payload), 422)
