import asyncio
import unicodedata
from typing import Any

import argon2
import bcrypt
import httpx
import pytest
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.resources import Resources
from app.domains.users.models import User
from tests.api.v1.auth_helpers import ME, REFRESH
from tests.conftest import serve, variant
from tests.factories import PASSWORD, Account, log_in, register, token, unique_email, user
from tests.problems import assert_problem


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


async def test_login_normalises_the_email_as_registration_stored_it(
    client: httpx.AsyncClient,
) -> None:
    # "é" composed at registration, decomposed (e + combining acute) and padded at login.
    composed = unique_email("Ren\u00e9e.")
    account = await register(client, email=composed)
    typed = "  " + unicodedata.normalize("NFD", composed).upper() + " "
    assert (await token(client, typed, account.password)).status_code == 200


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


async def test_an_access_token_at_the_refresh_endpoint_is_401(client: httpx.AsyncClient) -> None:
    account = await user(client)
    response = await client.post(REFRESH, json={"refresh_token": account.access_token})
    assert_problem(response, 401, "urn:problem-type:invalid-refresh-token")


async def test_concurrent_refreshes_with_one_token_let_at_most_one_through(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    responses = await asyncio.gather(
        *(client.post(REFRESH, json={"refresh_token": account.refresh_token}) for _ in range(8))
    )
    statuses = sorted(response.status_code for response in responses)
    # One spends the token; the rest present a spent token, which also ends the session.
    assert statuses == [200] + [401] * 7


async def test_logout_revokes_the_access_token_at_once(client: httpx.AsyncClient) -> None:
    account = await user(client)
    logout = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert logout.status_code == 204
    after = await client.get(ME, headers=account.headers)
    assert after.status_code == 401
    assert after.headers["www-authenticate"].startswith("Bearer")
    refresh = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401


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


async def test_a_login_costs_the_same_whatever_hash_the_account_has(
    client: httpx.AsyncClient,
    migrated: Settings,
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown email, an account on Argon2id and an account still on an earlier release's
    bcrypt hash cost the same refused login, so timing tells none of them apart: each runs
    one Argon2id and one bcrypt verification, at the same cost parameters. (Counted rather
    than timed, so a busy machine cannot make it pass or fail.)"""
    current = await register(client)
    legacy = await register(client)
    stored = bcrypt.hashpw(legacy.password.encode(), bcrypt.gensalt(10)).decode()
    async with resources.sessionmaker.begin() as session:
        await session.execute(
            update(User).where(User.id == legacy.id).values(hashed_password=stored)
        )
    verifications: list[str] = []
    argon2_verify, bcrypt_checkpw = argon2.PasswordHasher.verify, bcrypt.checkpw

    def counted_argon2(hasher: argon2.PasswordHasher, hash: str | bytes, password: Any) -> Any:
        text = hash.decode() if isinstance(hash, bytes) else hash
        # "$argon2id$v=19$m=...,t=...,p=...$salt$digest": the cost is the third field.
        verifications.append("argon2id " + text.split("$")[3])
        return argon2_verify(hasher, hash, password)

    def counted_bcrypt(password: bytes, hashed: bytes) -> bool:
        # "$2b$10$...": the cost is the second field.
        verifications.append("bcrypt " + hashed.decode().split("$")[2])
        return bcrypt_checkpw(password, hashed)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counted_argon2)
    monkeypatch.setattr(bcrypt, "checkpw", counted_bcrypt)
    emails = {"unknown": unique_email("ghost"), "argon2": current.email, "bcrypt": legacy.email}
    done: dict[str, list[str]] = {}
    async with serve(variant(migrated, password_hash_bcrypt_rounds=10)) as service:
        for kind, email in emails.items():
            verifications.clear()
            assert (await token(service, email, "not-the-password-1")).status_code == 401
            done[kind] = sorted(verifications)
        assert done["unknown"] == done["argon2"] == done["bcrypt"], done
        assert [name.split()[0] for name in done["unknown"]] == ["argon2id", "bcrypt"]
        assert done["bcrypt"][1] == "bcrypt 10"
        # And the bcrypt account still signs in, with its hash upgraded.
        assert (await token(service, legacy.email, legacy.password)).status_code == 200
    async with resources.sessionmaker() as session:
        upgraded = await session.scalar(select(User.hashed_password).where(User.id == legacy.id))
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")


async def test_bcrypt_hashes_can_be_refused_once_none_remain(
    client: httpx.AsyncClient, migrated: Settings, resources: Resources
) -> None:
    account = await register(client)
    stored = bcrypt.hashpw(account.password.encode(), bcrypt.gensalt(4)).decode()
    async with resources.sessionmaker.begin() as session:
        await session.execute(
            update(User).where(User.id == account.id).values(hashed_password=stored)
        )
    async with serve(variant(migrated, password_hash_bcrypt_rounds=0)) as service:
        refused = await token(service, account.email, account.password)
        assert_problem(refused, 401, "urn:problem-type:invalid-credentials")
        other = await register(service)
        assert (await token(service, other.email, other.password)).status_code == 200


async def test_health_stays_prompt_during_a_burst_of_logins(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Hashing runs in worker threads: while a burst of logins hashes, the event loop
    goes on answering other requests. A hash run on the loop would let one through between
    hashes at most, five in all; counted rather than timed, so load cannot flip it."""
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
        logins = [
            asyncio.create_task(token(slow_hashing, account.email, account.password))
            for _ in range(4)
        ]
        answered = 0
        while not all(login.done() for login in logins):
            # Through the event loop, as a request arriving on a socket would be: a hash
            # running on the loop would hold this up for the whole hash.
            await asyncio.sleep(0.001)
            assert (await slow_hashing.get("/health")).status_code == 200
            answered += 1
        results = await asyncio.gather(*logins)
    assert answered >= 20
    assert all(result.status_code == 200 for result in results)
