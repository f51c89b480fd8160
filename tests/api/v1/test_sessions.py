"""The caller's sessions: listed with where and when they came from, and ended one by one,
from the next request on."""

import httpx

from app.core.config import Settings
from app.core.resources import Resources
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.conftest import serve
from tests.factories import Account, audit_events, bearer, create_api_key, log_in, user
from tests.problems import assert_problem
from tests.statements import counted_statements

SESSIONS = "/api/v1/users/me/sessions"


async def second_login(client: httpx.AsyncClient, account: Account, agent: str) -> Account:
    """Another session of the same account, from another client."""
    other = Account(account.id, account.email, account.password)
    response = await client.post(
        "/api/v1/auth/token",
        data={"username": account.email, "password": account.password},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200
    other.access_token = response.json()["access_token"]
    other.refresh_token = response.json()["refresh_token"]
    return other


async def test_the_list_shows_each_live_session_newest_first(client: httpx.AsyncClient) -> None:
    account = await user(client)
    phone = await second_login(client, account, "Phone/1.0 " + "x" * 400)
    listed = await client.get(SESSIONS, headers=account.headers)
    assert listed.status_code == 200
    sessions = listed.json()["items"]
    assert [set(s) for s in sessions] == [
        {"id", "created_at", "last_used_at", "ip", "user_agent", "current"}
    ] * 2
    newest, oldest = sessions
    assert (newest["current"], oldest["current"]) == (False, True)
    assert newest["user_agent"] == ("Phone/1.0 " + "x" * 400)[:255]
    assert oldest["ip"] == newest["ip"] != ""
    assert newest["created_at"] >= oldest["created_at"]
    # From the phone's side, the phone's session is the current one.
    seen_by_phone = (await client.get(SESSIONS, headers=phone.headers)).json()["items"]
    assert [s["current"] for s in seen_by_phone] == [True, False]


async def test_a_refresh_moves_last_used_and_a_logout_leaves_the_list(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    other = await second_login(client, account, "Laptop")
    before = (await client.get(SESSIONS, headers=account.headers)).json()["items"][0]
    pair = (await client.post(REFRESH, json={"refresh_token": other.refresh_token})).json()
    after = (await client.get(SESSIONS, headers=account.headers)).json()["items"][0]
    assert after["id"] == before["id"]
    assert after["last_used_at"] > before["last_used_at"]
    await client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
    remaining = (await client.get(SESSIONS, headers=account.headers)).json()["items"]
    assert [s["current"] for s in remaining] == [True]


async def test_revoking_a_session_ends_its_tokens_at_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    stolen = await second_login(client, account, "Unknown")
    assert (await client.get(ME, headers=stolen.headers)).status_code == 200
    target = (await client.get(SESSIONS, headers=account.headers)).json()["items"][0]["id"]
    revoked = await client.delete(f"{SESSIONS}/{target}", headers=account.headers)
    assert revoked.status_code == 204
    assert (await client.get(ME, headers=stolen.headers)).status_code == 401
    refused = await client.post(REFRESH, json={"refresh_token": stolen.refresh_token})
    assert refused.status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    events = await audit_events(resources, action="auth.session_revoked")
    assert [(e.actor_id, e.target_id, e.details) for e in events] == [
        (account.id, account.id, {"session_id": target})
    ]
    again = await client.delete(f"{SESSIONS}/{target}", headers=account.headers)
    assert_problem(again, 404, "urn:problem-type:session-not-found")


async def test_a_revocation_holds_on_every_replica_at_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await user(client)
    other = await second_login(client, account, "Tablet")
    async with serve(settings) as replica:
        assert (await replica.get(ME, headers=other.headers)).status_code == 200
        target = (await client.get(SESSIONS, headers=account.headers)).json()["items"][0]["id"]
        await client.delete(f"{SESSIONS}/{target}", headers=account.headers)
        assert (await replica.get(ME, headers=other.headers)).status_code == 401


async def test_someone_elses_or_an_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    mine, theirs = await user(client), await user(client)
    their_session = (await client.get(SESSIONS, headers=theirs.headers)).json()["items"][0]["id"]
    for session_id in (their_session, "0" * 32):
        response = await client.delete(f"{SESSIONS}/{session_id}", headers=mine.headers)
        assert_problem(response, 404, "urn:problem-type:session-not-found")
    assert (await client.get(ME, headers=theirs.headers)).status_code == 200
    assert_problem(await client.delete(f"{SESSIONS}/not-an-id", headers=mine.headers), 422)


async def test_an_api_key_cannot_see_or_end_sessions(client: httpx.AsyncClient) -> None:
    account = await user(client)
    key = bearer((await create_api_key(client, account, "profile"))["key"])
    listed = await client.get(SESSIONS, headers=key)
    assert_problem(listed, 403, "urn:problem-type:password-session-required")
    ended = await client.delete(f"{SESSIONS}/{'0' * 32}", headers=key)
    assert_problem(ended, 403, "urn:problem-type:password-session-required")


async def test_sessions_page_with_cursors(client: httpx.AsyncClient) -> None:
    account = await user(client)
    for _ in range(3):
        await log_in(Account(account.id, account.email, account.password), client)
    first = (await client.get(SESSIONS, params={"limit": 2}, headers=account.headers)).json()
    rest = await client.get(
        SESSIONS, params={"cursor": first["next_cursor"], "limit": 2}, headers=account.headers
    )
    ids = [s["id"] for s in first["items"] + rest.json()["items"]]
    assert len(ids) == len(set(ids)) == 4
    assert rest.json()["next_cursor"] is None


async def test_an_authenticated_request_still_writes_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    with counted_statements(resources) as statements:
        assert (await client.get(ME, headers=account.headers)).status_code == 200
    assert len(statements) == 1, statements
