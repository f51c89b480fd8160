import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from app.core.config import Settings
from app.core.jobs import OutboxMessage
from app.core.jobs.email import EMAIL
from app.core.resources import Resources
from tests.conftest import serve
from tests.factories import (
    PASSWORD,
    Inbox,
    admin,
    audit_events,
    bearer,
    create_api_key,
    log_in,
    register,
    token,
    unique_email,
    user,
)
from tests.factories.mail import body as mail_body
from tests.problems import assert_problem

USERS = "/api/v1/users"
ME = "/api/v1/users/me"
ROOT = Path(__file__).resolve().parents[3]


def registration(email: str, **changes: Any) -> dict[str, Any]:
    return {"email": email, "full_name": "Grace Hopper", "password": PASSWORD} | changes


async def emails_to(resources: Resources, address: str) -> list[str]:
    async with resources.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == EMAIL.topic)
            .order_by(OutboxMessage.id)
        )
        return [row.payload["subject"] for row in rows if row.payload["to"] == address]


async def test_registration_returns_the_user_without_secrets(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email()
    response = await client.post(USERS, json=registration(email.upper()))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "role",
        "is_active",
        "email_verified",
        "mfa_enabled",
        "created_at",
    }
    assert body["email_verified"] is False
    assert body["mfa_enabled"] is False
    assert body["email"] == email
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert PASSWORD not in response.text
    assert await emails_to(resources, email) == ["Welcome aboard"]


async def test_email_is_unique_whatever_its_case(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email()
    assert (await client.post(USERS, json=registration(email))).status_code == 201
    duplicate = await client.post(USERS, json=registration(email.upper()))
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert duplicate.json()["type"] == "urn:problem-type:email-taken"
    assert await emails_to(resources, email) == ["Welcome aboard"], "no email for a failure"


async def test_concurrent_registrations_of_one_email_let_exactly_one_win(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    responses = await asyncio.gather(
        *(client.post(USERS, json=registration(email)) for _ in range(10))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9


async def test_password_policy(client: httpx.AsyncClient) -> None:
    for password in ["short1", "no-digits-here", "x1" * 65, "nul\x00byte1"]:
        response = await client.post(USERS, json=registration(unique_email(), password=password))
        assert response.status_code == 422, password
        assert response.json()["errors"][0]["loc"] == ["body", "password"]
        assert password not in response.text


async def test_registration_rejects_invalid_and_unknown_fields(client: httpx.AsyncClient) -> None:
    attempts = [
        registration(unique_email(), role="admin"),
        registration(unique_email(), is_admin=True),
        registration(unique_email(), is_active=False),
        registration("not-an-email"),
        registration(unique_email(), full_name=""),
        registration(unique_email(), full_name="x" * 201),
        registration(unique_email(), full_name="nul\x00"),
    ]
    for body in attempts:
        response = await client.post(USERS, json=body)
        assert response.status_code == 422, body


async def test_read_and_update_me(client: httpx.AsyncClient) -> None:
    account = await user(client)
    response = await client.get(ME, headers=account.headers)
    assert response.headers["cache-control"] == "private, no-store"
    me = response.json()
    assert me["email"] == account.email
    assert me["id"] == account.id

    new_email = unique_email("renamed")
    response = await client.patch(
        ME,
        json={"full_name": "  Ada King  ", "email": new_email, "current_password": PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada King"
    assert response.json()["email"] == new_email
    assert (await token(client, new_email, account.password)).status_code == 200


async def test_update_me_cannot_take_a_used_email_or_a_role(client: httpx.AsyncClient) -> None:
    first = await user(client)
    second = await user(client)
    taken = await client.patch(
        ME, json={"email": first.email, "current_password": PASSWORD}, headers=second.headers
    )
    assert taken.status_code == 409
    promoted = await client.patch(ME, json={"role": "admin"}, headers=second.headers)
    assert promoted.status_code == 422
    nulled = await client.patch(ME, json={"full_name": None}, headers=second.headers)
    assert nulled.status_code == 422
    me = (await client.get(ME, headers=second.headers)).json()
    assert me["email"] == second.email
    assert me["role"] == "user"


async def test_an_email_change_needs_the_password_in_a_password_session(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    account = await user(client)
    new_email = unique_email("taken-over")
    missing = await client.patch(ME, json={"email": new_email}, headers=account.headers)
    problem = assert_problem(missing, 422, "urn:problem-type:validation-error")
    assert problem["errors"][0]["loc"] == ["body", "current_password"]
    wrong = await client.patch(
        ME, json={"email": new_email, "current_password": "not-it-1"}, headers=account.headers
    )
    assert_problem(wrong, 400, "urn:problem-type:wrong-current-password")
    # A key with `profile` may rename its user, never move the account to another address.
    key = bearer((await create_api_key(client, account, "profile"))["key"])
    by_key = await client.patch(
        ME, json={"email": new_email, "current_password": PASSWORD}, headers=key
    )
    assert_problem(by_key, 403, "urn:problem-type:password-session-required")
    renamed = await client.patch(ME, json={"full_name": "Ada K"}, headers=key)
    assert renamed.status_code == 200

    me = (await client.get(ME, headers=account.headers)).json()
    assert me["email"] == account.email
    assert await emails_to(resources, new_email) == []
    # Whoever holds only the key cannot have a reset link sent to an address of theirs.
    await client.post("/api/v1/auth/password-reset", json={"email": new_email})
    assert [message["To"] for message in await inbox.deliver()] == [account.email]


async def test_an_email_change_tells_the_old_address_and_is_audited(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    account = await user(client)
    await inbox.deliver()  # the welcome email
    new_email = unique_email("moved")
    changed = await client.patch(
        ME, json={"email": new_email, "current_password": PASSWORD}, headers=account.headers
    )
    assert changed.status_code == 200
    assert changed.json()["email"] == new_email

    notice = await inbox.one_to(account.email, "Your email address was changed")
    for part in (mail_body(notice), mail_body(notice, "html")):
        assert account.email in part
        assert new_email not in part
        assert PASSWORD not in part
    [event] = await audit_events(resources, action="user.email_changed")
    assert (event.actor_id, event.target_type, event.target_id) == (account.id, "user", account.id)
    assert event.request_id == changed.headers["x-request-id"]
    assert event.details == {"previous_email": account.email, "email": new_email}


async def test_password_change_revokes_every_other_session(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    other = await log_in(
        type(account)(id=account.id, email=account.email, password=account.password), client
    )
    wrong = await client.post(
        f"{ME}/password",
        json={"current_password": "not-it-1", "new_password": "brand-new-pass-2"},
        headers=account.headers,
    )
    assert wrong.status_code == 400
    changed = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "brand-new-pass-2"},
        headers=account.headers,
    )
    assert changed.status_code == 204
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    assert (await client.get(ME, headers=other.headers)).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": other.refresh_token})
    assert refresh.status_code == 401
    assert (await token(client, account.email, PASSWORD)).status_code == 401
    assert (await token(client, account.email, "brand-new-pass-2")).status_code == 200
    assert await emails_to(resources, account.email) == [
        "Welcome aboard",
        "Your password was changed",
    ]


async def test_user_administration_is_for_admins_only(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    someone = await user(client)
    assert (await client.get(USERS)).status_code == 401
    forbidden = await client.get(USERS, headers=someone.headers)
    assert forbidden.status_code == 403
    assert (await client.get(f"{USERS}/{someone.id}", headers=someone.headers)).status_code == 403
    patch = await client.patch(
        f"{USERS}/{someone.id}", json={"role": "admin"}, headers=someone.headers
    )
    assert patch.status_code == 403

    boss = await admin(client, resources)
    page = (await client.get(USERS, params={"limit": 1}, headers=boss.headers)).json()
    assert page["limit"] == 1
    assert page["offset"] == 0
    assert page["total"] >= 2
    assert len(page["items"]) == 1
    found = await client.get(f"{USERS}/{someone.id}", headers=boss.headers)
    assert found.json()["email"] == someone.email
    missing = await client.get(f"{USERS}/999999999", headers=boss.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    for hostile in ["99999999999999999999", "0", "-1", "me2"]:
        response = await client.get(f"{USERS}/{hostile}", headers=boss.headers)
        assert response.status_code == 422, hostile
        patched = await client.patch(
            f"{USERS}/{hostile}", json={"is_active": True}, headers=boss.headers
        )
        assert patched.status_code == 422, hostile


async def test_listing_users_rejects_out_of_range_pages(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    boss = await admin(client, resources)
    for params in [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"offset": -1}]:
        response = await client.get(USERS, params=params, headers=boss.headers)
        assert response.status_code == 422, params
    empty = await client.get(USERS, params={"offset": 1_000_000}, headers=boss.headers)
    assert empty.json()["items"] == []


async def test_deactivation_revokes_the_users_sessions_at_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    someone = await user(client)
    boss = await admin(client, resources)
    response = await client.patch(
        f"{USERS}/{someone.id}", json={"is_active": False}, headers=boss.headers
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert (await client.get(ME, headers=someone.headers)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": someone.refresh_token}
    )
    assert refresh.status_code == 401
    assert (await token(client, someone.email, someone.password)).status_code == 401


async def test_only_a_json_boolean_deactivates(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    someone = await user(client)
    boss = await admin(client, resources)
    for loose in (0, "no", "off", "false", None):
        response = await client.patch(
            f"{USERS}/{someone.id}", json={"is_active": loose}, headers=boss.headers
        )
        problem = assert_problem(response, 422, "urn:problem-type:validation-error")
        assert problem["errors"][0]["loc"] in (["body", "is_active"], ["body"]), loose
    assert (await client.get(ME, headers=someone.headers)).json()["is_active"] is True


async def test_promotion_and_demotion_take_effect_on_the_next_request(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    boss = await admin(client, resources)
    deputy = await admin(client, resources)
    assert (await client.get(USERS, headers=deputy.headers)).status_code == 200
    demoted = await client.patch(
        f"{USERS}/{deputy.id}", json={"role": "user"}, headers=boss.headers
    )
    assert demoted.json()["role"] == "user"
    # The deputy's token still carries the admin scope, but the role is read afresh.
    assert (await client.get(USERS, headers=deputy.headers)).status_code == 403


async def test_first_admin_is_created_from_settings_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = unique_email("first-admin")
    configured = settings.model_copy(
        update={"first_admin_email": email, "first_admin_password": SecretStr(PASSWORD)}
    )
    async with serve(configured) as first_start:
        pair = await token(first_start, email, PASSWORD)
        assert pair.status_code == 200
        assert "users:admin" in pair.json()["scope"].split()
    async with serve(configured) as second_start:
        assert (await token(second_start, email, PASSWORD)).status_code == 200


async def test_create_admin_command(client: httpx.AsyncClient, settings: Settings) -> None:
    email = unique_email("operator")
    environment = {
        "PATH": os.environ["PATH"],
        "ADMIN_PASSWORD": PASSWORD,
        "DATABASE_URL": settings.database_url or "",
        "SQLITE_PATH": str(settings.sqlite_path),
    }
    command = [sys.executable, "-m", "app.cli", "create-admin", "--email", email]
    created = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"created administrator {email}"
    again = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert again.stdout.strip() == f"{email} already exists"
    pair = await token(client, email, PASSWORD)
    assert "users:admin" in pair.json()["scope"].split()


async def test_registration_and_login_are_rate_limited(settings: Settings) -> None:
    strict = settings.model_copy(
        update={"rate_limit_register": "2/hour", "rate_limit_login": "3/minute"}
    )
    async with serve(strict) as limited:
        accounts = [await register(limited), await register(limited)]
        third = await limited.post(USERS, json=registration(unique_email()))
        assert third.status_code == 429
        assert int(third.headers["retry-after"]) > 0
        assert third.headers["ratelimit-limit"] == "2"

        target = accounts[0]
        for _ in range(3):
            assert (await token(limited, target.email, "wrong-guess-1")).status_code == 401
        blocked = await token(limited, target.email, target.password)
        assert blocked.status_code == 429
        assert blocked.headers["content-type"] == "application/problem+json"
        # Another account from the same address is not locked out by those guesses.
        other = accounts[1]
        assert (await token(limited, other.email, other.password)).status_code == 200
