"""The token endpoint as standard OAuth2 clients use it: the refresh grant (RFC 6749
section 6) with /auth/refresh's rotation and reuse detection, RFC 6749's error members on
every error, and an off-the-shelf client (authlib) that refreshes by itself."""

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc6749 import OAuth2Token

from app.core.config import Settings
from app.core.resources import Resources
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.conftest import serve, variant
from tests.factories import audit_events, register, token, user
from tests.problems import assert_problem

TOKEN = "/api/v1/auth/token"


def refresh_form(refresh_token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token} | extra


def assert_oauth2_error(
    response: httpx.Response, status: int, error: str, type_: str | None = None
) -> None:
    body = assert_problem(response, status, type_)
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert body["error_description"]


async def test_the_refresh_grant_rotates_like_refresh(client: httpx.AsyncClient) -> None:
    account = await user(client)
    rotated = await client.post(TOKEN, data=refresh_form(account.refresh_token))
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    pair = rotated.json()
    assert pair["token_type"] == "bearer"
    assert pair["refresh_token"] != account.refresh_token
    assert "profile" in pair["scope"].split()
    fresh = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get(ME, headers=fresh)).status_code == 200
    # The rotated token is one /auth/refresh takes too: one family, either way in.
    again = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200


async def test_a_spent_refresh_token_at_the_token_endpoint_revokes_the_session(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    first = (await client.post(TOKEN, data=refresh_form(account.refresh_token))).json()
    replayed = await client.post(TOKEN, data=refresh_form(account.refresh_token))
    assert_oauth2_error(replayed, 401, "invalid_grant", "urn:problem-type:invalid-refresh-token")
    # The whole family is gone: the pair the spent token was traded for, too.
    newest = {"Authorization": f"Bearer {first['access_token']}"}
    assert (await client.get(ME, headers=newest)).status_code == 401
    refused = await client.post(TOKEN, data=refresh_form(first["refresh_token"]))
    assert refused.status_code == 401
    reuse = await audit_events(resources, action="auth.refresh_reuse_detected")
    assert [event.target_id for event in reuse] == [account.id]


async def test_a_refresh_may_narrow_the_scopes_but_never_widen_them(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client, scope="orders:read profile")
    narrowed = await client.post(TOKEN, data=refresh_form(account.refresh_token, scope="profile"))
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "profile"
    wider = refresh_form(narrowed.json()["refresh_token"], scope="profile items:write")
    assert_oauth2_error(
        await client.post(TOKEN, data=wider), 400, "invalid_scope", "urn:problem-type:invalid-scope"
    )
    # Refused before anything was spent: the token still refreshes, to the session's scopes.
    kept = await client.post(TOKEN, data=refresh_form(narrowed.json()["refresh_token"]))
    assert kept.json()["scope"] == "orders:read profile"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, 422, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, 422, "invalid_request"),
        ({"password": "whatever-1"}, 422, "invalid_request"),
        ({"username": "ada@example.com"}, 422, "invalid_request"),
        ({"username": "ada@example.com", "password": "x" * 129}, 422, "invalid_request"),
        (refresh_form("not-a-token"), 401, "invalid_grant"),
        ({"username": "nobody@example.com", "password": "whatever-1"}, 401, "invalid_grant"),
    ],
)
async def test_every_token_endpoint_error_carries_rfc_6749_members(
    client: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    assert_oauth2_error(await client.post(TOKEN, data=form), status, error)


async def test_a_wrong_password_keeps_its_problem_and_adds_invalid_grant(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    wrong = await token(client, account.email, "not-the-password-1")
    assert_oauth2_error(wrong, 401, "invalid_grant", "urn:problem-type:invalid-credentials")
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_a_refused_token_request_over_the_limit_carries_them_too(
    settings: Settings, empty_redis: None
) -> None:
    async with serve(variant(settings, rate_limit_login="1/minute")) as limited:
        form = {"username": "ada@example.com", "password": "whatever-1"}
        assert (await limited.post(TOKEN, data=form)).status_code == 401
        over = await limited.post(TOKEN, data=form)
        assert_oauth2_error(over, 429, "invalid_request", "urn:problem-type:rate-limit-exceeded")
        assert "retry-after" in over.headers


async def test_other_routes_keep_plain_problems(client: httpx.AsyncClient) -> None:
    refused = await client.post(REFRESH, json={"refresh_token": "not-a-token"})
    assert "error" not in assert_problem(refused, 401)


async def test_an_oauth2_client_library_refreshes_by_itself(client: httpx.AsyncClient) -> None:
    account = await register(client)
    stored: list[OAuth2Token] = []

    async def keep(new: OAuth2Token, refresh_token: str | None = None, **_: object) -> None:
        stored.append(new)

    # A leeway longer than the access token lives: every request finds the token about to
    # expire, and the library refreshes it first, as it would once the token really expired.
    oauth = AsyncOAuth2Client(
        client_id="reference-client",
        token_endpoint_auth_method="none",
        token_endpoint=f"{client.base_url}{TOKEN}",
        update_token=keep,
        leeway=3600,
        transport=client._transport,
        base_url=client.base_url,
        headers=client.headers,
    )
    first = await oauth.fetch_token(username=account.email, password=account.password)
    for _ in range(2):
        me = await oauth.get(ME)
        assert me.status_code == 200
        assert me.json()["id"] == account.id
    refresh_tokens = [first["refresh_token"], *(new["refresh_token"] for new in stored)]
    assert len(stored) == 2
    assert len(set(refresh_tokens)) == 3
    # Each refresh spent the token before it: the first one replayed ends the session.
    replayed = await client.post(TOKEN, data=refresh_form(first["refresh_token"]))
    assert replayed.status_code == 401
    newest = {"Authorization": f"Bearer {stored[-1]['access_token']}"}
    assert (await client.get(ME, headers=newest)).status_code == 401
