"""Two-factor login (TOTP): enrolment confirmed by a code, ten single-use backup codes, the
mfa_token step at login, codes that work once, five tries, and turning it off."""

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.db.base import utcnow
from app.core.resources import Resources
from app.domains.auth import totp
from app.domains.auth.models import MfaChallenge, TotpCredential
from tests.api.v1.auth_helpers import ME
from tests.conftest import serve, variant
from tests.factories import (
    Account,
    Inbox,
    admin,
    audit_events,
    bearer,
    create_api_key,
    job_log_text,
    link_token,
    token,
    unique_email,
    user,
)
from tests.problems import assert_problem

MFA = "/api/v1/users/me/mfa/totp"
TOKEN = "/api/v1/auth/token"
TOKEN_MFA = "/api/v1/auth/token/mfa"
MFA_REQUIRED = "urn:problem-type:mfa-required"
WRONG_CODE = "urn:problem-type:invalid-mfa-code"
INVALID_MFA_TOKEN = "urn:problem-type:invalid-mfa-token"


# A request reaches the service well within this; the previous step's code, which stops
# working at the next step, is not used closer to it than this.
STEP_MARGIN_SECONDS = 3.0


class Authenticator:
    """The app on the person's phone: it holds the secret and gives each step's code."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        # Codes from a step before now to a step after it are accepted: three per test.
        self.step = totp.current_step() - 2

    def _next_step(self) -> int:
        now = time.time()
        current = totp.current_step(now)
        ending_soon = (current + 1) * totp.STEP_SECONDS - now < STEP_MARGIN_SECONDS
        step = max(self.step + 1, current if ending_soon else current - 1)
        if step > current + 1:
            # Only near a step's end, having passed over the previous step's code: the next
            # step, soon here, accepts this one.
            time.sleep((current + 1) * totp.STEP_SECONDS - now)
        return step

    def code(self) -> str:
        """The code `next_code` gives next, without using it up."""
        return totp.code_at(self.secret, self._next_step())

    def next_code(self) -> str:
        """A code no earlier request used, within the window the service accepts."""
        self.step = self._next_step()
        return totp.code_at(self.secret, self.step)

    def wrong_code(self) -> str:
        right = {totp.code_at(self.secret, totp.current_step() + d) for d in (-1, 0, 1, 2)}
        return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in right)


async def enrol(client: httpx.AsyncClient, account: Account) -> tuple[Authenticator, list[str]]:
    """Two-factor login turned on for the account; its authenticator and backup codes."""
    started = await client.post(MFA, headers=account.headers)
    assert started.status_code == 201, started.text
    app = Authenticator(started.json()["secret"])
    confirmed = await client.post(
        f"{MFA}/confirm", json={"code": app.next_code()}, headers=account.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return app, confirmed.json()["backup_codes"]


async def password_step(client: httpx.AsyncClient, account: Account) -> str:
    response = await token(client, account.email, account.password)
    body = assert_problem(response, 401, MFA_REQUIRED)
    assert body["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"
    mfa_token: str = body["mfa_token"]
    assert len(mfa_token) >= 32
    return mfa_token


async def second_step(client: httpx.AsyncClient, mfa_token: str, code: str) -> httpx.Response:
    return await client.post(TOKEN_MFA, json={"mfa_token": mfa_token, "code": code})


def comparable(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return {key: value for key, value in body.items() if key != "request_id"}


async def test_enrolment_gives_a_secret_that_is_off_until_a_code_confirms_it(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    account = await user(client)
    started = await client.post(MFA, headers=account.headers)
    assert started.status_code == 201
    secret = started.json()["secret"]
    uri = urlsplit(started.json()["otpauth_uri"])
    assert uri.scheme == "otpauth"
    assert account.email in uri.path
    assert parse_qs(uri.query)["secret"] == [secret]
    # Not on yet: the password alone still logs in.
    assert (await token(client, account.email, account.password)).status_code == 200
    assert (await client.get(ME, headers=account.headers)).json()["mfa_enabled"] is False

    app = Authenticator(secret)
    wrong = await client.post(
        f"{MFA}/confirm", json={"code": app.wrong_code()}, headers=account.headers
    )
    assert_problem(wrong, 400, "urn:problem-type:invalid-code")
    confirmed = await client.post(
        f"{MFA}/confirm", json={"code": app.next_code()}, headers=account.headers
    )
    assert confirmed.status_code == 200
    codes = confirmed.json()["backup_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert (await client.get(ME, headers=account.headers)).json()["mfa_enabled"] is True
    again = await client.post(MFA, headers=account.headers)
    assert_problem(again, 409, "urn:problem-type:mfa-already-enabled")
    events = await audit_events(resources, action="mfa.enabled")
    assert [(e.actor_id, e.target_id) for e in events] == [(account.id, account.id)]
    await inbox.one_to(account.email, "Two-factor login is on")


async def test_confirming_without_an_enrolment_is_409(client: httpx.AsyncClient) -> None:
    account = await user(client)
    response = await client.post(f"{MFA}/confirm", json={"code": "123456"}, headers=account.headers)
    assert_problem(response, 409, "urn:problem-type:mfa-not-enrolling")


async def test_the_right_password_asks_for_a_code_and_the_code_logs_in(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    mfa_token = await password_step(client, account)
    response = await second_step(client, mfa_token, app.next_code())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert "profile" in pair["scope"].split()
    me = await client.get(ME, headers=bearer(pair["access_token"]))
    assert me.json()["id"] == account.id
    logins = await audit_events(resources, action="auth.login", actor_id=account.id)
    assert logins[-1].details["mfa"] == "totp"
    # The mfa_token was single-use.
    assert_problem(await second_step(client, mfa_token, app.code()), 401, INVALID_MFA_TOKEN)


async def test_a_wrong_password_says_nothing_about_mfa(client: httpx.AsyncClient) -> None:
    account = await user(client)
    await enrol(client, account)
    wrong = await token(client, account.email, "not-the-password-1")
    unknown = await token(client, unique_email("ghost"), "not-the-password-1")
    body = assert_problem(wrong, 401, "urn:problem-type:invalid-credentials")
    assert "mfa_token" not in body
    assert comparable(wrong) == comparable(unknown)


async def test_a_totp_code_works_once(client: httpx.AsyncClient) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    code = app.next_code()
    assert (await second_step(client, await password_step(client, account), code)).is_success
    replay = await second_step(client, await password_step(client, account), code)
    assert_problem(replay, 401, WRONG_CODE)


async def test_five_wrong_codes_spend_the_step(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    mfa_token = await password_step(client, account)
    for _ in range(5):
        body = assert_problem(
            await second_step(client, mfa_token, app.wrong_code()), 401, WRONG_CODE
        )
        assert body["error"] == "invalid_grant"
    spent = await second_step(client, mfa_token, app.code())
    assert_problem(spent, 401, INVALID_MFA_TOKEN)
    failures = await audit_events(resources, action="auth.mfa_failed", target_id=account.id)
    assert [e.details["attempt"] for e in failures] == [1, 2, 3, 4, 5]
    # A new login is a new step with tries of its own.
    fresh = await second_step(client, await password_step(client, account), app.next_code())
    assert fresh.status_code == 200


async def test_an_mfa_token_expires(client: httpx.AsyncClient, resources: Resources) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    mfa_token = await password_step(client, account)
    async with resources.sessionmaker() as session:
        created = await session.scalar(select(MfaChallenge.created_at))
        assert created is not None
        lifetime = await session.scalar(select(MfaChallenge.expires_at))
        assert lifetime is not None
        assert (lifetime - created).total_seconds() == pytest.approx(300, abs=1)
        await session.execute(update(MfaChallenge).values(expires_at=utcnow()))
        await session.commit()
    assert_problem(await second_step(client, mfa_token, app.code()), 401, INVALID_MFA_TOKEN)


async def test_a_backup_code_works_once_however_it_is_typed(client: httpx.AsyncClient) -> None:
    account = await user(client)
    _, codes = await enrol(client, account)
    typed = " " + codes[0].upper().replace("-", " ") + " "
    used = await second_step(client, await password_step(client, account), typed)
    assert used.status_code == 200, used.text
    again = await second_step(client, await password_step(client, account), codes[0])
    assert_problem(again, 401, WRONG_CODE)
    other = await second_step(client, await password_step(client, account), codes[1])
    assert other.status_code == 200


async def test_turning_it_off_takes_a_code(
    client: httpx.AsyncClient, resources: Resources, inbox: Inbox
) -> None:
    account = await user(client)
    app, codes = await enrol(client, account)
    wrong = await client.request("DELETE", MFA, json={"code": "999-999"}, headers=account.headers)
    assert_problem(wrong, 400, "urn:problem-type:invalid-code")
    off = await client.request("DELETE", MFA, json={"code": codes[3]}, headers=account.headers)
    assert off.status_code == 204
    assert (await client.get(ME, headers=account.headers)).json()["mfa_enabled"] is False
    assert (await token(client, account.email, account.password)).status_code == 200
    again = await client.request("DELETE", MFA, json={"code": app.code()}, headers=account.headers)
    assert_problem(again, 409, "urn:problem-type:mfa-not-enabled")
    events = await audit_events(resources, action="mfa.disabled")
    assert [e.details for e in events] == [{"with": "backup_code"}]
    await inbox.one_to(account.email, "Two-factor login is off")
    # On again, with a new secret: the old backup codes are gone.
    _, fresh_codes = await enrol(client, account)
    old = await second_step(client, await password_step(client, account), codes[4])
    assert_problem(old, 401, WRONG_CODE)
    assert not set(codes) & set(fresh_codes)


async def test_api_keys_cannot_manage_mfa_and_keep_working_with_it(
    client: httpx.AsyncClient,
) -> None:
    account = await user(client)
    key = bearer((await create_api_key(client, account, "profile"))["key"])
    refused = await client.post(MFA, headers=key)
    assert_problem(refused, 403, "urn:problem-type:password-session-required")
    await enrol(client, account)
    assert (await client.get(ME, headers=key)).status_code == 200


async def test_a_password_reset_leaves_mfa_on(client: httpx.AsyncClient, inbox: Inbox) -> None:
    account = await user(client)
    await enrol(client, account)
    await client.post("/api/v1/auth/password-reset", json={"email": account.email})
    link = link_token(await inbox.one_to(account.email, "Reset your password"), "/reset-password")
    confirm = {"token": link, "new_password": "a-new-password-5"}
    assert (await client.post("/api/v1/auth/password-reset/confirm", json=confirm)).is_success
    account.password = "a-new-password-5"
    await password_step(client, account)


async def test_the_secret_is_never_stored_or_logged_in_clear(
    client: httpx.AsyncClient, resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = await user(client)
    started = await client.post(MFA, headers=account.headers)
    secret = started.json()["secret"]
    app = Authenticator(secret)
    await client.post(f"{MFA}/confirm", json={"code": app.next_code()}, headers=account.headers)
    async with resources.sessionmaker() as session:
        stored = await session.scalar(select(TotpCredential.secret))
    assert stored is not None
    assert secret not in stored
    events = await audit_events(resources)
    assert secret not in str([(e.action, e.details) for e in events])
    assert secret not in await job_log_text(resources)
    assert secret not in caplog.text


async def test_codes_still_work_after_the_secret_key_rotates(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    rotated = settings.model_copy(
        update={
            "secret_key": type(settings.secret_key)("the-next-key-0123456789-0123456789-xyz"),
            "previous_secret_keys": [settings.secret_key],
        }
    )
    async with serve(rotated) as after_rotation:
        mfa_token = await password_step(after_rotation, account)
        assert (await second_step(after_rotation, mfa_token, app.next_code())).status_code == 200


async def test_the_second_step_is_rate_limited_per_address(
    settings: Settings, empty_redis: None
) -> None:
    async with serve(variant(settings, rate_limit_mfa="2/minute")) as limited:
        body = {"mfa_token": "x" * 43, "code": "123456"}
        for _ in range(2):
            assert (await limited.post(TOKEN_MFA, json=body)).status_code == 401
        over = await limited.post(TOKEN_MFA, json=body)
        assert_problem(over, 429)
        assert over.json()["error"] == "invalid_request"


async def test_a_current_code_turns_it_off_too(client: httpx.AsyncClient) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    off = await client.request(
        "DELETE", MFA, json={"code": app.next_code()}, headers=account.headers
    )
    assert off.status_code == 204
    assert (await token(client, account.email, account.password)).status_code == 200


async def test_an_account_deactivated_between_the_steps_is_refused(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    account = await user(client)
    app, _ = await enrol(client, account)
    mfa_token = await password_step(client, account)
    boss = await admin(client, resources)
    deactivate = {"is_active": False}
    changed = await client.patch(
        f"/api/v1/users/{account.id}", json=deactivate, headers=boss.headers
    )
    assert changed.status_code == 200
    assert_problem(await second_step(client, mfa_token, app.next_code()), 401, INVALID_MFA_TOKEN)
