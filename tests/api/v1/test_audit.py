import json
from typing import Any

import httpx

from app.core.resources import Resources
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.factories import (
    API_KEYS,
    PASSWORD,
    Account,
    Inbox,
    admin,
    audit_events,
    bearer,
    create_api_key,
    create_item,
    link_token,
    log_in,
    order_body,
    place,
    register,
    token,
    unique_email,
    user,
)
from tests.problems import assert_problem

AUDIT = "/api/v1/audit-events"
USERS = "/api/v1/users"


async def only_event(resources: Resources, action: str, response: httpx.Response) -> Any:
    """The one event of `action`, checked to come from the request behind `response`."""
    events = await audit_events(resources, action=action)
    assert len(events) == 1, [event.action for event in events]
    assert events[0].request_id == response.headers["x-request-id"]
    assert events[0].ip == "127.0.0.1"
    return events[0]


async def test_account_actions_are_recorded_with_actor_and_request(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    email = unique_email()
    registered = await client.post(
        USERS, json={"email": email, "full_name": "Ada", "password": PASSWORD}
    )
    account = Account(id=registered.json()["id"], email=email, password=PASSWORD)
    event = await only_event(resources, "user.registered", registered)
    assert (event.actor_id, event.target_type, event.target_id) == (account.id, "user", account.id)

    failed = await token(client, email, "wrong-password-1")
    assert failed.status_code == 401
    event = await only_event(resources, "auth.login_failed", failed)
    assert event.actor_id is None
    assert (event.target_type, event.target_id) == ("user", account.id)
    assert event.details == {"reason": "wrong_password"}
    ghost = await token(client, unique_email("ghost"), "whatever-1")
    ghost_events = await audit_events(resources, action="auth.login_failed")
    assert ghost_events[-1].target_id is None
    assert ghost_events[-1].request_id == ghost.headers["x-request-id"]

    logged_in = await token(client, email, PASSWORD)
    account.access_token = logged_in.json()["access_token"]
    account.refresh_token = logged_in.json()["refresh_token"]
    event = await only_event(resources, "auth.login", logged_in)
    assert event.actor_id == account.id

    welcome = await inbox.one_to(email, "Welcome aboard")
    verified = await client.post(
        "/api/v1/auth/verify-email", json={"token": link_token(welcome, "/verify-email")}
    )
    assert (await only_event(resources, "user.email_verified", verified)).actor_id == account.id

    changed = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "changed-pass-2"},
        headers=account.headers,
    )
    assert (await only_event(resources, "user.password_changed", changed)).actor_id == account.id

    requested = await client.post("/api/v1/auth/password-reset", json={"email": email})
    # Recorded by the job that mails the link, with the request that asked for it.
    reset_link = link_token(await inbox.one_to(email, "Reset your password"), "/reset-password")
    event = await only_event(resources, "user.password_reset_requested", requested)
    assert (event.actor_id, event.target_id) == (None, account.id)
    reset = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": reset_link, "new_password": "reset-pass-3"},
    )
    assert (await only_event(resources, "user.password_reset", reset)).actor_id == account.id

    account.password = "reset-pass-3"
    await log_in(account, client)
    spent = account.refresh_token
    assert (await client.post(REFRESH, json={"refresh_token": spent})).status_code == 200
    replayed = await client.post(REFRESH, json={"refresh_token": spent})
    assert replayed.status_code == 401
    event = await only_event(resources, "auth.refresh_reuse_detected", replayed)
    assert (event.actor_id, event.target_id) == (None, account.id)

    await log_in(account, client)
    logged_out = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert (await only_event(resources, "auth.logout", logged_out)).actor_id == account.id


async def test_administration_keys_and_orders_are_recorded(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    boss = await admin(client, resources)
    customer = await user(client)

    promoted = await client.patch(
        f"{USERS}/{customer.id}", json={"role": "admin", "is_active": True}, headers=boss.headers
    )
    event = await only_event(resources, "user.updated", promoted)
    assert (event.actor_id, event.target_id) == (boss.id, customer.id)
    assert event.details == {"changes": ["is_active", "role"], "is_active": True, "role": "admin"}

    created = await client.post(
        API_KEYS, json={"name": "ci", "scopes": ["profile"]}, headers=customer.headers
    )
    event = await only_event(resources, "api_key.created", created)
    assert (event.actor_id, event.target_type) == (customer.id, "api_key")
    assert event.target_id == created.json()["id"]
    revoked = await client.delete(f"{API_KEYS}/{created.json()['id']}", headers=customer.headers)
    assert (await only_event(resources, "api_key.revoked", revoked)).actor_id == customer.id

    item_id = await create_item(resources, boss.id, price="20.00")
    placed = await place(client, customer, order_body((item_id, 2)))
    order_id = placed.json()["id"]
    event = await only_event(resources, "order.placed", placed)
    assert (event.actor_id, event.target_type, event.target_id) == (customer.id, "order", order_id)
    assert event.details == {"total": "45.00", "lines": 1}
    shipped = await client.post(f"/api/v1/orders/{order_id}/ship", headers=boss.headers)
    assert (await only_event(resources, "order.shipped", shipped)).actor_id == boss.id

    second = (await place(client, customer, order_body((item_id, 1)))).json()["id"]
    cancelled = await client.post(f"/api/v1/orders/{second}/cancel", headers=customer.headers)
    assert (await only_event(resources, "order.cancelled", cancelled)).target_id == second
    # A refused transition changes nothing, so it leaves no event.
    again = await client.post(f"/api/v1/orders/{second}/cancel", headers=customer.headers)
    assert again.status_code == 409
    assert len(await audit_events(resources, action="order.cancelled")) == 1


async def test_a_failed_change_leaves_no_event(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await register(client)
    taken = await client.post(
        USERS, json={"email": account.email, "full_name": "Twin", "password": PASSWORD}
    )
    assert taken.status_code == 409
    customer = await user(client)
    item_id = await create_item(resources, customer.id, stock=1)
    short = await place(client, customer, order_body((item_id, 5)))
    assert short.status_code == 409
    assert [event.action for event in await audit_events(resources)] == [
        "user.registered",
        "user.registered",
        "auth.login",
    ]


async def test_the_log_is_for_administrators_newest_first_and_filtered(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    someone = await user(client)
    assert_problem(await client.get(AUDIT), 401)
    assert_problem(await client.get(AUDIT, headers=someone.headers), 403)
    boss = await admin(client, resources)
    key = bearer((await create_api_key(client, boss, "users:admin"))["key"])

    page = (await client.get(AUDIT, headers=key)).json()
    actions = [entry["action"] for entry in page["items"]]
    assert actions[0] == "api_key.created"
    assert actions[-1] == "user.registered"
    assert page["total"] == len(actions)
    assert set(page["items"][0]) == {
        "id",
        "action",
        "actor_id",
        "target_type",
        "target_id",
        "request_id",
        "ip",
        "details",
        "created_at",
    }
    ids = [entry["id"] for entry in page["items"]]
    assert ids == sorted(ids, reverse=True)

    logins = (await client.get(AUDIT, params={"action": "auth.login"}, headers=key)).json()
    assert {entry["actor_id"] for entry in logins["items"]} == {someone.id, boss.id}
    mine = await client.get(AUDIT, params={"actor_id": someone.id}, headers=key)
    assert {entry["actor_id"] for entry in mine.json()["items"]} == {someone.id}
    about = await client.get(
        AUDIT, params={"target_type": "user", "target_id": someone.id}, headers=key
    )
    assert {entry["action"] for entry in about.json()["items"]} == {"user.registered", "auth.login"}
    limited = (await client.get(AUDIT, params={"limit": 1}, headers=key)).json()
    assert len(limited["items"]) == 1
    assert limited["total"] == page["total"]

    for params in (
        {"action": "user.exploded"},
        {"actor_id": 0},
        {"target_id": "99999999999999999999"},
        {"target_type": "x" * 33},
        {"target_type": "User;drop"},
        {"limit": 101},
    ):
        assert_problem(await client.get(AUDIT, params=params, headers=key), 422)


async def test_no_secret_reaches_an_event_or_a_response(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    account = await user(client)
    secrets: list[str] = [account.password, account.access_token, account.refresh_token]
    await token(client, account.email, "mistyped-secret-9")
    created = await create_api_key(client, account, "profile")
    secrets.append(created["key"])
    await client.post("/api/v1/auth/password-reset", json={"email": account.email})
    messages = {message["Subject"]: message for message in await inbox.deliver()}
    verification = link_token(messages["Welcome aboard"], "/verify-email")
    reset = link_token(messages["Reset your password"], "/reset-password")
    secrets += [verification, reset]
    await client.post("/api/v1/auth/verify-email", json={"token": verification})
    new_password = "fresh-secret-5"
    await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": reset, "new_password": new_password}
    )
    secrets += [new_password, "mistyped-secret-9"]

    events = await audit_events(resources)
    assert {event.action for event in events} >= {
        "auth.login_failed",
        "api_key.created",
        "user.password_reset",
        "user.email_verified",
    }
    recorded = json.dumps(
        [[event.action, event.details, event.target_type, event.request_id] for event in events]
    )
    boss = await admin(client, resources)
    listed = (await client.get(AUDIT, params={"limit": 100}, headers=boss.headers)).text
    keys = (await client.get(API_KEYS, headers=boss.headers)).text
    for secret in secrets:
        assert secret not in recorded
        assert secret not in listed
        assert secret not in keys
