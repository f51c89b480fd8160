import asyncio
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from jwt.warnings import InsecureKeyLengthWarning
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.resources import Resources
from app.core.security import key_id
from app.domains.users.models import User
from tests.conftest import serve
from tests.factories import PASSWORD, Account, log_in, register, token, unique_email, user

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"


async def test_token_response_has_the_contract_fields(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await token(client, account.email, account.password)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 40
    assert "profile" in body["scope"].split()


async def test_login_accepts_the_email_in_any_case(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await token(client, account.email.upper(), account.password)
    assert response.status_code == 200


def comparable(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return {key: value for key, value in body.items() if key != "request_id"}


async def test_login_failures_are_indistinguishable(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await register(client)
    inactive = await register(client)
    async with resources.sessionmaker() as session:
        await session.execute(update(User).where(User.id == inactive.id).values(is_active=False))
        await session.commit()

    unknown = await token(client, unique_email("ghost"), PASSWORD)
    wrong = await token(client, account.email, "wrong-password-1")
    deactivated = await token(client, inactive.email, inactive.password)
    for response in (unknown, wrong, deactivated):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
    assert comparable(unknown) == comparable(wrong) == comparable(deactivated)


async def test_full_flow_with_refresh_rotation_and_reuse_detection(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    assert (await client.get(ME, headers=account.headers)).status_code == 200

    first_refresh = account.refresh_token
    rotated = await client.post(REFRESH, json={"refresh_token": first_refresh})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    newest = rotated.json()
    assert newest["refresh_token"] != first_refresh
    new_headers = {"Authorization": f"Bearer {newest['access_token']}"}
    assert (await client.get(ME, headers=new_headers)).status_code == 200

    # The spent token comes back (stolen, or replayed): the whole session is revoked.
    replay = await client.post(REFRESH, json={"refresh_token": first_refresh})
    assert replay.status_code == 401
    assert (await client.get(ME, headers=new_headers)).status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 401
    after = await client.post(REFRESH, json={"refresh_token": newest["refresh_token"]})
    assert after.status_code == 401


async def test_reuse_in_one_session_leaves_other_sessions_alone(client: httpx.AsyncClient) -> None:
    phone = await user(client)
    laptop = await log_in(Account(id=phone.id, email=phone.email, password=phone.password), client)
    spent = phone.refresh_token
    assert (await client.post(REFRESH, json={"refresh_token": spent})).status_code == 200
    assert (await client.post(REFRESH, json={"refresh_token": spent})).status_code == 401
    assert (await client.get(ME, headers=laptop.headers)).status_code == 200


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(REFRESH, json={"refresh_token": "not-a-real-token"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_refreshes_with_one_token_let_at_most_one_through(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    responses = await asyncio.gather(
        *(client.post(REFRESH, json={"refresh_token": account.refresh_token}) for _ in range(8))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) <= 1
    assert set(statuses) <= {200, 401}


async def test_logout_revokes_the_access_token_at_once(client: httpx.AsyncClient) -> None:
    account = await user(client)
    logout = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert logout.status_code == 204
    after = await client.get(ME, headers=account.headers)
    assert after.status_code == 401
    assert after.headers["www-authenticate"].startswith("Bearer")
    refresh = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401


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
    unsigned = jwt.encode(live | {"typ": "access"}, None, algorithm="none")

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


async def test_bcrypt_hashes_verify_and_are_upgraded_to_argon2(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await register(client)
    legacy = BcryptHasher().hash(account.password)
    async with resources.sessionmaker() as session:
        await session.execute(
            update(User).where(User.id == account.id).values(hashed_password=legacy)
        )
        await session.commit()
    assert (await token(client, account.email, account.password)).status_code == 200
    async with resources.sessionmaker() as session:
        stored = await session.scalar(select(User.hashed_password).where(User.id == account.id))
    assert stored is not None
    assert stored.startswith("$argon2id$")


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


async def test_health_stays_prompt_during_a_burst_of_logins(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Hashing runs in worker threads: while a burst of logins hashes, the event loop
    still answers other requests in a small fraction of one hash's time."""
    account = await register(client)
    expensive = settings.model_copy(
        update={
            # Slow enough that scheduling noise is small beside one hash.
            "password_hash_memory_kib": 262144,
            "password_hash_iterations": 3,
            "password_hash_concurrency": 1,
        }
    )
    async with serve(expensive) as slow_hashing:
        started = time.perf_counter()
        assert (await token(slow_hashing, account.email, account.password)).status_code == 200
        one_login = time.perf_counter() - started

        logins = [
            asyncio.create_task(token(slow_hashing, account.email, account.password))
            for _ in range(4)
        ]
        health_latencies = []
        while not all(login.done() for login in logins):
            started = time.perf_counter()
            # Through the event loop, as a request arriving on a socket would be: a hash
            # running on the loop would hold this up for the whole hash.
            await asyncio.sleep(0.001)
            assert (await slow_hashing.get("/health")).status_code == 200
            health_latencies.append(time.perf_counter() - started)
        results = await asyncio.gather(*logins)
    assert len(health_latencies) > 1
    assert max(health_latencies) < one_login / 2
    assert all(result.status_code == 200 for result in results)


async def test_openapi_security_scheme(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    flow = scheme["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/token"
    assert {"profile", "items:write", "orders:read", "users:admin"} <= set(flow["scopes"])
    me = schema["paths"]["/api/v1/users/me"]["patch"]
    assert me["security"] == [{"OAuth2PasswordBearer": ["profile"]}]
