import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import httpx
import jwt
import pytest
from sqlalchemy import text

from app.core.config import Settings
from app.core.resources import Resources
from app.core.security import InvalidToken, PasswordHasher, TokenCodec, key_id

ME = "/api/v1/users/me"
LONG_PASSWORD = "long-password-1-" + "x" * 80


async def registered(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/users", json={"email": email, "full_name": "Legacy", "password": password}
    )
    assert response.status_code == 201, response.text
    user_id: int = response.json()["id"]
    return user_id


async def store_hash(resources: Resources, user_id: int, hashed: str) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(
            text("UPDATE users SET hashed_password = :hashed WHERE id = :id"),
            {"hashed": hashed, "id": user_id},
        )


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


def comparable(response: httpx.Response) -> tuple[int, dict[str, Any]]:
    body = response.json()
    return response.status_code, {k: v for k, v in body.items() if k != "request_id"}


async def test_over_long_password_against_a_bcrypt_hash_is_an_ordinary_401(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user_id = await registered(client, "legacy@example.com", LONG_PASSWORD)
    # What earlier releases stored: bcrypt of the password's first 72 bytes.
    legacy = bcrypt.hashpw(LONG_PASSWORD.encode()[:72], bcrypt.gensalt(4)).decode()
    await store_hash(resources, user_id, legacy)

    over_long = await log_in(client, "legacy@example.com", LONG_PASSWORD)
    wrong = await log_in(client, "legacy@example.com", "wrong-password-1")
    unknown = await log_in(client, "nobody@example.com", LONG_PASSWORD)

    assert over_long.status_code == 401
    assert comparable(over_long) == comparable(wrong) == comparable(unknown)
    assert over_long.headers["content-type"] == "application/problem+json"


async def test_over_long_password_costs_a_bcrypt_computation_like_any_failure(
    settings: Settings,
) -> None:
    hasher = PasswordHasher(settings)
    stored = bcrypt.hashpw(b"short-password-1", bcrypt.gensalt(10)).decode()

    async def cost(password: str) -> float:
        started = time.perf_counter()
        assert await hasher.verify(password, stored) == (False, None)
        return time.perf_counter() - started

    wrong = min([await cost("wrong-password-1") for _ in range(3)])
    over_long = min([await cost(LONG_PASSWORD) for _ in range(3)])
    # Without the computation the refusal would take microseconds beside milliseconds.
    assert over_long > wrong / 4


def base_claims(settings: Settings) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "sub": "1",
        "sid": "0" * 32,
        "typ": "access",
        "scope": "profile",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": "x",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }


def signed(settings: Settings, **claims: Any) -> str:
    """An access token signed with the test key, with some claims replaced."""
    payload = base_claims(settings) | claims
    secret = settings.secret_key.get_secret_value()
    header = {"kid": key_id(secret)}
    return jwt.encode(payload, secret, algorithm=settings.jwt_algorithm, headers=header)


def signed_raw(settings: Settings, payload_json: str) -> str:
    """A token whose payload is given as JSON text, for values json.dumps would not write."""
    secret = settings.secret_key.get_secret_value()
    return jwt.api_jws.encode(
        payload_json.encode(),
        secret,
        algorithm=settings.jwt_algorithm,
        headers={"kid": key_id(secret), "typ": "JWT"},
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": str(10**30)},
        {"sub": str(2**63)},
        {"sub": "-5"},
        {"sub": "0"},
        {"sub": "1_0"},
        {"sub": " 1"},
        {"sid": 12345},
        {"sid": "not-a-session\u0000"},
        {"sid": ["0" * 32]},
        {"exp": 1e300},
        {"exp": 10**20},
        {"iat": -(10**20)},
        {"nbf": 1e300},
    ],
)
async def test_signed_token_with_out_of_range_claims_is_401(
    client: httpx.AsyncClient, settings: Settings, claims: dict[str, Any]
) -> None:
    response = await client.get(
        ME, headers={"Authorization": f"Bearer {signed(settings, **claims)}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e400"])
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_signed_token_with_non_finite_times_is_401(
    client: httpx.AsyncClient, settings: Settings, claim: str, value: str
) -> None:
    others = {name: v for name, v in base_claims(settings).items() if name != claim}
    token = signed_raw(settings, json.dumps(others)[:-1] + f', "{claim}": {value}}}')
    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text


def test_a_remembered_token_still_expires_and_an_altered_one_is_never_remembered(
    settings: Settings,
) -> None:
    codec = TokenCodec(settings)
    codec.lifetime = timedelta(seconds=1)
    token = codec.issue(user_id=7, session_id="a" * 32, scopes=frozenset({"profile"}))
    assert codec.verify(token).user_id == 7
    assert codec.verify(token).user_id == 7

    header, payload, signature = token.split(".")
    altered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidToken):
        codec.verify(altered)

    time.sleep(1.1)
    with pytest.raises(InvalidToken):
        codec.verify(token)
