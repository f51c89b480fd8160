"""Your account, your data: the export of everything held about you, and erasure."""

import logging

import httpx
import pytest

from app.core.config import Settings
from app.core.resources import Resources
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.conftest import serve, variant
from tests.factories import (
    API_KEYS,
    ITEMS,
    ORDERS,
    Account,
    Inbox,
    admin,
    audit_events,
    bearer,
    create_api_key,
    log_in,
    order_body,
    place,
    post_item,
    token,
    unique_email,
    user,
)
from tests.problems import assert_problem

EXPORT = "/api/v1/users/me/export"
POSTS = "/api/v1/posts"
NAME = "Grace Brewster Hopper"


async def person(client: httpx.AsyncClient) -> Account:
    """A signed-in user with a name of their own, to look for after erasure."""
    email = unique_email("grace")
    body = {"email": email, "full_name": NAME, "password": "grace-secret-1"}
    created = await client.post("/api/v1/users", json=body)
    assert created.status_code == 201
    return await log_in(Account(created.json()["id"], email, "grace-secret-1"), client)


async def with_history(client: httpx.AsyncClient, account: Account) -> dict[str, int]:
    """An item, an order of it, a post and an API key of the account's; their ids."""
    item = await post_item(client, account, stock=5)
    order = await place(client, account, order_body((item["id"], 1)))
    assert order.status_code == 201, order.text
    post = await client.post(
        POSTS, json={"title": "Notes", "body": "On compilers."}, headers=account.headers
    )
    key = await create_api_key(client, account, "profile")
    return {
        "item": item["id"],
        "order": order.json()["id"],
        "post": post.json()["id"],
        "key": key["id"],
    }


async def erase(client: httpx.AsyncClient, account: Account, password: str) -> httpx.Response:
    return await client.request("DELETE", ME, json={"password": password}, headers=account.headers)


async def test_the_export_is_one_download_of_everything_about_the_caller(
    client: httpx.AsyncClient,
) -> None:
    account = await person(client)
    ids = await with_history(client, account)
    stranger = await user(client)
    await with_history(client, stranger)

    response = await client.get(EXPORT, headers=account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].startswith("attachment;")
    data = response.json()
    assert set(data) == {"user", "orders", "posts", "items", "api_keys", "sessions", "audit_events"}
    assert data["user"]["email"] == account.email
    assert data["user"]["full_name"] == NAME
    assert [o["id"] for o in data["orders"]] == [ids["order"]]
    assert data["orders"][0]["lines"][0]["item_id"] == ids["item"]
    assert [p["id"] for p in data["posts"]] == [ids["post"]]
    assert [i["id"] for i in data["items"]] == [ids["item"]]
    assert [k["id"] for k in data["api_keys"]] == [ids["key"]]
    assert "key" not in data["api_keys"][0]
    assert [s["current"] for s in data["sessions"]] == [True]
    actions = {event["action"] for event in data["audit_events"]}
    assert {"user.registered", "auth.login", "order.placed", "api_key.created"} <= actions
    assert all(
        event["actor_id"] == account.id or event["target_id"] == account.id
        for event in data["audit_events"]
    )


async def test_the_export_holds_nothing_secret(client: httpx.AsyncClient) -> None:
    account = await person(client)
    key = await create_api_key(client, account, "profile")
    text = (await client.get(EXPORT, headers=account.headers)).text
    for secret in (account.access_token, account.refresh_token, key["key"], account.password):
        assert secret not in text
    assert "argon2" not in text
    assert "hashed_password" not in text


async def test_the_export_is_held_to_its_strict_limit(
    settings: Settings, empty_redis: None
) -> None:
    async with serve(variant(settings, rate_limit_export="2/hour")) as limited:
        account = await user(limited)
        for _ in range(2):
            assert (await limited.get(EXPORT, headers=account.headers)).status_code == 200
        over = await limited.get(EXPORT, headers=account.headers)
        assert_problem(over, 429, "urn:problem-type:rate-limit-exceeded")
        assert "retry-after" in over.headers
        # Per account: someone else still exports.
        other = await user(limited)
        assert (await limited.get(EXPORT, headers=other.headers)).status_code == 200


async def test_an_api_key_can_neither_export_nor_erase(client: httpx.AsyncClient) -> None:
    account = await user(client)
    key = bearer((await create_api_key(client, account, "profile"))["key"])
    for response in (
        await client.get(EXPORT, headers=key),
        await client.request("DELETE", ME, json={"password": account.password}, headers=key),
    ):
        assert_problem(response, 403, "urn:problem-type:password-session-required")


async def test_erasure_removes_the_person_and_keeps_the_business_records(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    boss = await admin(client, resources)
    account = await person(client)
    ids = await with_history(client, account)
    key = await create_api_key(client, account, "profile")
    new_email = unique_email("hopper")
    changed = await client.patch(
        ME,
        json={"email": new_email, "current_password": account.password},
        headers=account.headers,
    )
    assert changed.status_code == 200
    old_email, account.email = account.email, new_email
    await inbox.deliver()

    assert (await erase(client, account, account.password)).status_code == 204

    # Sessions and keys fail at once; the account never logs in again.
    assert (await client.get(ME, headers=account.headers)).status_code == 401
    assert (await client.get(ME, headers=bearer(key["key"]))).status_code == 401
    refresh = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401
    assert (await token(client, new_email, account.password)).status_code == 401
    # Posts are gone; the order and the item stay under the same user id.
    assert (await client.get(f"{POSTS}/{ids['post']}")).status_code == 404
    order = await client.get(f"{ORDERS}/{ids['order']}", headers=boss.headers)
    assert order.json()["user_id"] == account.id
    assert (await client.get(f"{ITEMS}/{ids['item']}")).json()["owner_id"] == account.id
    # The email and name are gone from every response and list, the audit log included.
    seen = [
        await client.get(f"/api/v1/users/{account.id}", headers=boss.headers),
        await client.get("/api/v1/users", params={"limit": 100}, headers=boss.headers),
        await client.get("/api/v1/audit-events", params={"limit": 100}, headers=boss.headers),
        order,
    ]
    for response in seen:
        assert response.status_code == 200
        for personal in (old_email, new_email, NAME):
            assert personal not in response.text
    erased = seen[0].json()
    assert (erased["is_active"], erased["full_name"], erased["mfa_enabled"]) == (False, "", False)
    events = await audit_events(resources, target_type="user", target_id=account.id)
    assert "user.email_changed" in [e.action for e in events]
    deleted = [e for e in events if e.action == "user.deleted"]
    assert [(e.actor_id, e.details) for e in deleted] == [(account.id, {})]
    # The address may register again, as a new account.
    again = await client.post(
        "/api/v1/users", json={"email": new_email, "full_name": "New", "password": "pass-word-9"}
    )
    assert again.status_code == 201
    assert again.json()["id"] != account.id
    notice = await inbox.one_to(new_email, "Your account was deleted")
    assert notice["To"] == new_email


async def test_nothing_logged_after_erasure_names_the_person(
    client: httpx.AsyncClient, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    boss = await admin(client, resources)
    account = await person(client)
    ids = await with_history(client, account)
    assert (await erase(client, account, account.password)).status_code == 204
    caplog.clear()
    caplog.set_level(logging.INFO)
    shipped = await client.post(f"{ORDERS}/{ids['order']}/ship", headers=boss.headers)
    assert shipped.status_code == 200
    await client.get("/api/v1/users", headers=boss.headers)
    await client.get(f"/api/v1/users/{account.id}", headers=boss.headers)
    await client.get(f"{ORDERS}/{ids['order']}", headers=boss.headers)
    assert caplog.records
    assert account.email not in caplog.text
    assert NAME not in caplog.text


async def test_a_wrong_password_erases_nothing(client: httpx.AsyncClient) -> None:
    account = await user(client)
    wrong = await erase(client, account, "not-my-password-1")
    assert_problem(wrong, 400, "urn:problem-type:wrong-current-password")
    assert (await client.get(ME, headers=account.headers)).status_code == 200


async def test_the_last_active_administrator_cannot_leave(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    only = await admin(client, resources)
    refused = await erase(client, only, only.password)
    assert_problem(refused, 409, "urn:problem-type:last-admin")
    assert (await client.get(ME, headers=only.headers)).status_code == 200
    await admin(client, resources)
    assert (await erase(client, only, only.password)).status_code == 204


async def test_an_erased_account_lists_no_keys_and_exports_nothing(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    await create_api_key(client, account, "profile")
    assert (await erase(client, account, account.password)).status_code == 204
    assert (await client.get(API_KEYS, headers=account.headers)).status_code == 401
    assert (await client.get(EXPORT, headers=account.headers)).status_code == 401
