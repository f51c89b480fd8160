import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.resources import Resources
from app.domains.auth.models import ApiKey
from app.main import create_app
from tests.api.v1.auth_helpers import ME
from tests.conftest import asgi_client, serve, variant
from tests.factories import (
    API_KEYS,
    ITEMS,
    ORDERS,
    PASSWORD,
    admin,
    bearer,
    create_api_key,
    log_in,
    user,
)
from tests.problems import assert_problem
from tests.statements import counted_statements
from tests.waiting import clear_of_window_end, eventually

USERS = "/api/v1/users"


async def stored_key(resources: Resources, key_id: int) -> ApiKey:
    async with resources.sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    assert key is not None
    return key


async def test_a_key_is_shown_once_and_acts_as_its_user(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    created = await create_api_key(
        client, account, "profile", "orders:read", name="backup job", expires_in_days=30
    )
    key = created["key"]
    assert set(created) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "key",
    }
    assert key.startswith("fsk_")
    assert len(key) >= 36
    assert created["prefix"] == key[:12]
    assert created["scopes"] == ["orders:read", "profile"]
    assert created["last_used_at"] is None
    assert created["expires_at"] is not None

    me = await client.get(ME, headers=bearer(key))
    assert me.status_code == 200
    assert me.json()["id"] == account.id
    assert me.headers["cache-control"] == "private, no-store"
    assert (await client.get(ORDERS, headers=bearer(key))).status_code == 200

    listed = (await client.get(API_KEYS, headers=account.headers)).json()
    assert listed["total"] == 1
    assert [entry["id"] for entry in listed["items"]] == [created["id"]]
    assert "key" not in listed["items"][0]
    assert key not in str(listed)
    stored = await stored_key(resources, created["id"])
    assert key not in (stored.key_hash, stored.prefix)


async def test_a_key_acts_only_within_its_scopes(client: httpx.AsyncClient) -> None:
    account = await user(client)
    key = (await create_api_key(client, account, "orders:read"))["key"]
    assert (await client.get(ORDERS, headers=bearer(key))).status_code == 200
    denied = await client.patch(ME, json={"full_name": "X"}, headers=bearer(key))
    problem = assert_problem(denied, 403, "urn:problem-type:insufficient-scope")
    assert "profile" in problem["detail"]
    assert (
        'scope="items:write"'
        in (await client.post(ITEMS, json={}, headers=bearer(key))).headers["www-authenticate"]
    )


async def test_scopes_beyond_the_callers_are_refused(client: httpx.AsyncClient) -> None:
    account = await user(client)
    for scopes in (["users:admin"], ["profile", "orders:admin"]):
        response = await client.post(
            API_KEYS, json={"name": "x", "scopes": scopes}, headers=account.headers
        )
        assert_problem(response, 422, "urn:problem-type:scope-not-allowed")
    narrow = await user(client, scope="profile")
    response = await client.post(
        API_KEYS, json={"name": "x", "scopes": ["orders:read"]}, headers=narrow.headers
    )
    assert_problem(response, 422, "urn:problem-type:scope-not-allowed")
    for body in (
        {"name": "", "scopes": ["profile"]},
        {"name": "x" * 101, "scopes": ["profile"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["everything"]},
        {"name": "x", "scopes": ["profile"], "expires_in_days": 0},
        {"name": "x", "scopes": ["profile"], "expires_in_days": 366},
        {"name": "x", "scopes": ["profile"], "owner_id": 1},
    ):
        assert_problem(await client.post(API_KEYS, json=body, headers=account.headers), 422)


async def test_credentials_cannot_be_managed_with_a_key(client: httpx.AsyncClient) -> None:
    account = await user(client)
    created = await create_api_key(client, account, "profile")
    key = bearer(created["key"])
    attempts = [
        client.post(API_KEYS, json={"name": "child", "scopes": ["profile"]}, headers=key),
        client.get(API_KEYS, headers=key),
        client.delete(f"{API_KEYS}/{created['id']}", headers=key),
        client.post(
            f"{ME}/password",
            json={"current_password": PASSWORD, "new_password": "another-pass-3"},
            headers=key,
        ),
        client.post("/api/v1/auth/logout", headers=key),
    ]
    for attempt in attempts:
        assert_problem(await attempt, 403, "urn:problem-type:password-session-required")
    assert (await client.get(ME, headers=key)).status_code == 200


async def test_a_revoked_key_fails_on_the_next_request(client: httpx.AsyncClient) -> None:
    account = await user(client)
    stranger = await user(client)
    created = await create_api_key(client, account)
    foreign = await client.delete(f"{API_KEYS}/{created['id']}", headers=stranger.headers)
    assert_problem(foreign, 404, "urn:problem-type:api-key-not-found")
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200

    assert (
        await client.delete(f"{API_KEYS}/{created['id']}", headers=account.headers)
    ).status_code == 204
    refused = await client.get(ME, headers=bearer(created["key"]))
    assert_problem(refused, 401, "urn:problem-type:invalid-token")
    assert refused.headers["www-authenticate"].startswith("Bearer")
    again = await client.delete(f"{API_KEYS}/{created['id']}", headers=account.headers)
    assert again.status_code == 404
    for hostile in ("0", "-1", "99999999999999999999", "abc"):
        response = await client.delete(f"{API_KEYS}/{hostile}", headers=account.headers)
        assert response.status_code == 422, hostile


async def test_expired_unknown_and_invented_keys_are_401(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    created = await create_api_key(client, account, expires_in_days=1)
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    for key in (created["key"], "fsk_" + secrets.token_urlsafe(40), "fsk_", created["key"] + "x"):
        assert_problem(await client.get(ME, headers=bearer(key)), 401)


async def test_deactivation_and_demotion_reach_keys_at_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    boss = await admin(client, resources)
    deputy = await admin(client, resources)
    deputy_key = (await create_api_key(client, deputy, "users:admin", "profile"))["key"]
    assert (await client.get(USERS, headers=bearer(deputy_key))).status_code == 200
    await client.patch(f"{USERS}/{deputy.id}", json={"role": "user"}, headers=boss.headers)
    demoted = await client.get(USERS, headers=bearer(deputy_key))
    assert_problem(demoted, 403, "urn:problem-type:insufficient-scope")
    assert (await client.get(ME, headers=bearer(deputy_key))).status_code == 200

    someone = await user(client)
    someone_key = (await create_api_key(client, someone))["key"]
    await client.patch(f"{USERS}/{someone.id}", json={"is_active": False}, headers=boss.headers)
    assert_problem(await client.get(ME, headers=bearer(someone_key)), 401)
    # Reactivation brings the key back: it was never revoked, only its user was stopped.
    await client.patch(f"{USERS}/{someone.id}", json={"is_active": True}, headers=boss.headers)
    assert (await client.get(ME, headers=bearer(someone_key))).status_code == 200


async def test_last_use_is_recorded_at_most_once_a_minute(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    created = await create_api_key(client, account)
    key = bearer(created["key"])

    async def last_use() -> datetime | None:
        return (await stored_key(resources, created["id"])).last_used_at

    async def used_after(moment: datetime | None) -> bool:
        used = await last_use()
        return used is not None and (moment is None or used > moment)

    await client.get(ME, headers=key)
    # Written after the response: through a server, it may land a moment after the client
    # has the answer.
    await eventually(lambda: used_after(None))
    first = await last_use()
    assert first is not None
    with counted_statements(resources) as statements:
        assert (await client.get(ME, headers=key)).status_code == 200
    # Within the minute: the one lookup, no write.
    assert len(statements) == 1, statements
    assert await last_use() == first

    stale = first - timedelta(minutes=2)
    async with resources.sessionmaker.begin() as session:
        await session.execute(update(ApiKey).values(last_used_at=stale))
    await client.get(ME, headers=key)
    await eventually(lambda: used_after(stale))
    listed = (await client.get(API_KEYS, headers=account.headers)).json()["items"][0]
    assert listed["last_used_at"] is not None


async def test_an_authenticated_request_is_one_query(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    created = await create_api_key(client, account)
    key = bearer(created["key"])
    await client.get(ME, headers=key)

    async def first_use_recorded() -> bool:
        return (await stored_key(resources, created["id"])).last_used_at is not None

    # The first use records last_used_at, after its response.
    await eventually(first_use_recorded)
    for headers in (account.headers, key):
        with counted_statements(resources) as statements:
            me = await client.get(ME, headers=headers)
        assert me.status_code == 200
        assert me.json()["email_verified"] is False
        assert len(statements) == 1, statements


@asynccontextmanager
async def limited_app(settings: Settings, *peers: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """An app with a small default limit, and a client from each of `peers`."""
    application = create_app(variant(settings, rate_limit_default="6/minute"))
    async with application.router.lifespan_context(application), AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(asgi_client(application, peer)) for peer in peers
        ]
        yield clients


async def test_a_users_keys_and_sessions_spend_one_budget(
    migrated: Settings, empty_redis: None
) -> None:
    await clear_of_window_end(60)
    async with limited_app(migrated, "127.0.0.2") as (client,):
        # Registering and logging in spend the address's budget; the rest is the user's.
        account = await user(client)
        keys = [bearer((await create_api_key(client, account))["key"]) for _ in range(2)]
        statuses = [
            (await client.get(ME, headers=headers)).status_code
            for headers in (*keys, account.headers, *keys, account.headers)
        ]
    # Two keys created, then six reads with either key or the session: the user's six units.
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_a_revoked_or_malformed_credential_spends_only_its_senders_budget(
    migrated: Settings, empty_redis: None
) -> None:
    await clear_of_window_end(60)
    async with limited_app(migrated, "127.0.0.2", "127.0.0.3") as (owner, attacker):
        account = await user(owner)
        assert (await owner.post("/api/v1/auth/logout", headers=account.headers)).status_code == 204
        stolen = {b"Authorization": f"Bearer {account.access_token}".encode()}
        # A key whose last characters are not ASCII is refused like any unknown key.
        malformed = {b"Authorization": ("Bearer fsk_" + "a" * 43 + "é" * 8).encode()}
        replies = [
            await attacker.get(ME, headers=stolen if turn % 2 else malformed) for turn in range(7)
        ]
        assert [reply.status_code for reply in replies] == [401] * 6 + [429]
        assert_problem(replies[0], 401)
        # The owner's budget is untouched: logging in again and reading still work.
        await log_in(account, owner)
        assert (await owner.get(ME, headers=account.headers)).status_code == 200


async def test_an_account_holds_a_bounded_number_of_live_keys(
    migrated: Settings, resources: Resources
) -> None:
    async with serve(variant(migrated, max_api_keys_per_user=3)) as client:
        account = await user(client)
        body = {"name": "script", "scopes": ["profile"]}
        # Concurrent creations cannot pass the bound together.
        replies = await asyncio.gather(
            *(client.post(API_KEYS, json=body, headers=account.headers) for _ in range(6))
        )
        assert sorted(reply.status_code for reply in replies) == [201] * 3 + [409] * 3
        refused = next(reply for reply in replies if reply.status_code == 409)
        assert_problem(refused, 409, "urn:problem-type:api-key-limit")
        assert "3" in refused.json()["detail"]
        listed = (await client.get(API_KEYS, headers=account.headers)).json()
        assert listed["total"] == 3
        # An expired key no longer counts, and revoking one frees its place.
        first, second = (entry["id"] for entry in listed["items"][:2])
        async with resources.sessionmaker.begin() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == first).values(expires_at=utcnow())
            )
        assert (await client.post(API_KEYS, json=body, headers=account.headers)).status_code == 201
        assert (await client.post(API_KEYS, json=body, headers=account.headers)).status_code == 409
        revoked = await client.delete(f"{API_KEYS}/{second}", headers=account.headers)
        assert revoked.status_code == 204
        assert (await client.post(API_KEYS, json=body, headers=account.headers)).status_code == 201
