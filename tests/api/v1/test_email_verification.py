from datetime import timedelta

import httpx
from sqlalchemy import update

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.resources import Resources
from app.domains.users.models import AccountToken
from tests.api.v1.auth_helpers import ME
from tests.conftest import serve, variant
from tests.factories import (
    ITEMS,
    Inbox,
    body,
    create_api_key,
    job_log_text,
    link_token,
    log_in,
    register,
    stored_link_tokens,
    unique_email,
    user,
)
from tests.problems import assert_problem

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/users/me/verify-email"
ITEM = {"name": "Lamp", "description": "", "price": "9.90", "stock": 1}


async def verification_token(inbox: Inbox, email: str, subject: str = "Verify your email") -> str:
    return link_token(await inbox.one_to(email, subject), "/verify-email")


async def test_registration_emails_a_link_that_verifies_the_address(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await user(client)
    assert (await client.get(ME, headers=account.headers)).json()["email_verified"] is False
    welcome = await inbox.one_to(account.email, "Welcome aboard")
    assert "48 hours" in body(welcome)
    token_value = link_token(welcome, "/verify-email")

    assert (await client.post(VERIFY, json={"token": token_value})).status_code == 204
    assert (await client.get(ME, headers=account.headers)).json()["email_verified"] is True
    again = await client.post(VERIFY, json={"token": token_value})
    assert_problem(again, 400, "urn:problem-type:invalid-token")


async def test_the_job_log_holds_no_link_that_verifies_the_address(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    account = await user(client)
    queued = await job_log_text(resources)
    token_value = link_token(await inbox.one_to(account.email, "Welcome aboard"), "/verify-email")

    assert token_value not in queued + await job_log_text(resources)
    [stored] = stored_link_tokens(queued, "/verify-email")
    assert_problem(await client.post(VERIFY, json={"token": stored}), 400)
    assert (await client.post(VERIFY, json={"token": token_value})).status_code == 204


async def test_a_fresh_link_replaces_the_old_one_until_verified(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await user(client)
    first = await verification_token(inbox, account.email, "Welcome aboard")
    resent = await client.post(RESEND, headers=account.headers)
    assert resent.status_code == 202
    assert account.email in resent.json()["detail"]
    second = await verification_token(inbox, account.email)
    assert_problem(await client.post(VERIFY, json={"token": first}), 400)
    assert (await client.post(VERIFY, json={"token": second})).status_code == 204
    done = await client.post(RESEND, headers=account.headers)
    assert_problem(done, 409, "urn:problem-type:email-already-verified")
    assert await inbox.deliver() == []


async def test_a_new_email_must_be_verified_again(client: httpx.AsyncClient, inbox: Inbox) -> None:
    account = await user(client)
    old_link = await verification_token(inbox, account.email, "Welcome aboard")
    assert (await client.post(VERIFY, json={"token": old_link})).status_code == 204

    new_email = unique_email("moved")
    changed = await client.patch(
        ME, json={"email": new_email, "current_password": account.password}, headers=account.headers
    )
    assert changed.json()["email_verified"] is False
    new_link = await verification_token(inbox, new_email)
    assert (await client.post(VERIFY, json={"token": new_link})).status_code == 204
    assert (await client.get(ME, headers=account.headers)).json()["email_verified"] is True
    # Renaming alone does not touch verification, and sends nothing.
    await client.patch(ME, json={"full_name": "Ada K"}, headers=account.headers)
    assert (await client.get(ME, headers=account.headers)).json()["email_verified"] is True
    assert await inbox.deliver() == []


async def test_a_link_sent_to_a_previous_address_proves_nothing(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await user(client)
    to_old_address = await verification_token(inbox, account.email, "Welcome aboard")
    moved = {"email": unique_email("moved"), "current_password": account.password}
    assert (await client.patch(ME, json=moved, headers=account.headers)).status_code == 200
    refused = await client.post(VERIFY, json={"token": to_old_address})
    assert_problem(refused, 400, "urn:problem-type:invalid-token")
    assert (await client.get(ME, headers=account.headers)).json()["email_verified"] is False


async def test_expired_and_unknown_tokens_are_refused(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    account = await register(client)
    token_value = await verification_token(inbox, account.email, "Welcome aboard")
    async with resources.sessionmaker.begin() as session:
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for candidate in (token_value, "unknown-token"):
        response = await client.post(VERIFY, json={"token": candidate})
        assert_problem(response, 400, "urn:problem-type:invalid-token")
    assert_problem(await client.post(VERIFY, json={"token": ""}), 422)
    assert_problem(await client.post(VERIFY, json={}), 422)


async def test_a_credential_of_another_kind_is_an_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    key = (await create_api_key(client, account, "profile"))["key"]
    # A client that mixes up its tokens learns that the token is wrong, not that its
    # request is malformed.
    for candidate in (account.access_token, account.refresh_token, key, "x" * 4096):
        response = await client.post(VERIFY, json={"token": candidate})
        assert_problem(response, 400, "urn:problem-type:invalid-token")
        confirm = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": candidate, "new_password": "a-brand-new-secret-9"},
        )
        assert_problem(confirm, 400, "urn:problem-type:invalid-token")
    assert_problem(await client.post(VERIFY, json={"token": "x" * 4097}), 422)


async def test_resending_needs_a_user_and_is_rate_limited(migrated: Settings) -> None:
    async with serve(variant(migrated, rate_limit_verify_email="1/hour")) as limited:
        assert_problem(await limited.post(RESEND), 401)
        account = await user(limited)
        assert (await limited.post(RESEND, headers=account.headers)).status_code == 202
        blocked = await limited.post(RESEND, headers=account.headers)
        assert_problem(blocked, 429, "urn:problem-type:rate-limit-exceeded")
        # Per user: someone else from the same address still gets a link.
        other = await user(limited)
        assert (await limited.post(RESEND, headers=other.headers)).status_code == 202


async def test_writes_can_require_a_verified_email(
    migrated: Settings, resources: Resources, inbox: Inbox
) -> None:
    async with serve(variant(migrated, require_verified_email=True)) as strict:
        account = await user(strict)
        refused = await strict.post(ITEMS, json=ITEM, headers=account.headers)
        problem = assert_problem(refused, 403, "urn:problem-type:email-unverified")
        assert "verify-email" in problem["detail"]
        posted = await strict.post(
            "/api/v1/posts", json={"title": "t", "body": "b"}, headers=account.headers
        )
        assert_problem(posted, 403, "urn:problem-type:email-unverified")
        # Reads, and the account's own routes, stay open.
        assert (await strict.get(ITEMS, headers=account.headers)).status_code == 200
        assert (await strict.get(ME, headers=account.headers)).status_code == 200
        renamed = await strict.patch(ME, json={"full_name": "Ada"}, headers=account.headers)
        assert renamed.status_code == 200

        token_value = await verification_token(inbox, account.email, "Welcome aboard")
        assert (await strict.post(VERIFY, json={"token": token_value})).status_code == 204
        created = await strict.post(ITEMS, json=ITEM, headers=account.headers)
        assert created.status_code == 201


async def test_writes_are_open_to_unverified_users_by_default(client: httpx.AsyncClient) -> None:
    account = await log_in(await register(client), client)
    assert (await client.post(ITEMS, json=ITEM, headers=account.headers)).status_code == 201
