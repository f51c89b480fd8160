import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from jwt.warnings import InsecureKeyLengthWarning

from app.core.config import Settings
from app.core.security import key_id
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.conftest import serve
from tests.factories import log_in, register, token, user


def forge(settings: Settings, **changes: Any) -> str:
    """A token like the real ones, with the given claims, header or key changed."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": "1",
        "sid": "0" * 32,
        "typ": "access",
        "scope": "profile",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "jti": "x",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    claims |= changes.pop("claims", {})
    secret = changes.pop("key", settings.secret_key.get_secret_value())
    algorithm = changes.pop("algorithm", "HS256")
    headers = {"kid": key_id(settings.secret_key.get_secret_value())} | changes.pop("headers", {})
    with warnings.catch_warnings():
        # The development key is too short for HS512; an attacker would not care.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def real_claims(access_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims


async def test_malformed_and_hostile_tokens_are_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await user(client)
    mine = real_claims(account.access_token)
    live = {"sub": mine["sub"], "sid": mine["sid"]}
    header, payload, signature = account.access_token.split(".")
    unsigned = jwt.encode(live | {"typ": "access"}, "", algorithm="none")

    hostile = {
        "alg none": unsigned,
        "other algorithm": forge(settings, claims=live, algorithm="HS512"),
        "wrong key": forge(settings, claims=live, key="x" * 48),
        "wrong issuer": forge(settings, claims=live | {"iss": "someone-else"}),
        "wrong audience": forge(settings, claims=live | {"aud": "another-api"}),
        "expired": forge(settings, claims=live | {"exp": datetime.now(UTC) - timedelta(seconds=1)}),
        "not yet valid": forge(
            settings, claims=live | {"nbf": datetime.now(UTC) + timedelta(minutes=5)}
        ),
        "refresh token type": forge(settings, claims=live | {"typ": "refresh"}),
        "missing session": forge(settings, claims={"sub": mine["sub"]} | {"sid": "f" * 32}),
        "unknown key id": forge(settings, claims=live, headers={"kid": "nope"}),
        "tampered payload": f"{header}.{payload[:-2]}xy.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-2]}xy",
        "garbage": "not-a-jwt",
        "refresh token as bearer": account.refresh_token,
    }
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    for name, bad in hostile.items():
        response = await client.get(ME, headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name


async def test_tokens_in_the_query_string_are_ignored(client: httpx.AsyncClient) -> None:
    account = await user(client)
    response = await client.get(ME, params={"access_token": account.access_token})
    assert response.status_code == 401


async def test_missing_token_is_401_with_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_narrower_scope_is_enforced_with_403_naming_it(client: httpx.AsyncClient) -> None:
    account = await user(client, scope="orders:read")
    assert account.access_token
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    response = await client.patch(ME, json={"full_name": "X"}, headers=account.headers)
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="profile"'
    )


async def test_users_cannot_obtain_admin_scopes(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await token(client, account.email, account.password, "users:admin profile")
    assert response.json()["scope"] == "profile"


async def test_refresh_keeps_the_granted_scopes(client: httpx.AsyncClient) -> None:
    account = await user(client, scope="orders:read")
    pair = (await client.post(REFRESH, json={"refresh_token": account.refresh_token})).json()
    assert pair["scope"] == "orders:read"
    assert real_claims(pair["access_token"])["scope"] == "orders:read"


async def test_tokens_signed_with_a_previous_key_still_verify(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await user(client)
    rotated = settings.model_copy(
        update={
            "secret_key": type(settings.secret_key)("the-next-key-0123456789-0123456789-xyz"),
            "previous_secret_keys": [settings.secret_key],
        }
    )
    async with serve(rotated) as after_rotation:
        assert (await after_rotation.get(ME, headers=account.headers)).status_code == 200
        fresh = await log_in(account, after_rotation)
        assert real_claims(fresh.access_token)  # issued with the new key
        assert (await after_rotation.get(ME, headers=fresh.headers)).status_code == 200
    # A server that never knew the new key rejects tokens signed with it.
    assert (await client.get(ME, headers=fresh.headers)).status_code == 401


async def test_openapi_security_scheme(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    flow = scheme["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/token"
    assert {"profile", "items:write", "orders:read", "users:admin"} <= set(flow["scopes"])
    # An API key pasted into Authorize is the other way in, wherever a token is accepted.
    assert schema["components"]["securitySchemes"]["APIKey"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "fsk_...",
        "description": "",
    }
    me = schema["paths"]["/api/v1/users/me"]["patch"]
    assert me["security"] == [{"OAuth2PasswordBearer": ["profile"]}, {"APIKey": ["profile"]}]
    admin_only = schema["paths"]["/api/v1/users"]["get"]["security"]
    assert admin_only == [{"OAuth2PasswordBearer": ["users:admin"]}, {"APIKey": ["users:admin"]}]
    ship = schema["paths"]["/api/v1/orders/{order_id}/ship"]["post"]["security"]
    assert ship == [{"OAuth2PasswordBearer": ["orders:admin"]}, {"APIKey": ["orders:admin"]}]
    assert "security" not in schema["paths"]["/api/v1/items"]["get"]
