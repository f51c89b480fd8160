"""The pages behind the emailed links, over plain HTTP: every answer and every error page,
their headers, and that a GET never spends a token."""

import re

import httpx
import pytest

from app.core.resources import Resources
from app.pages.rendering import CONTENT_SECURITY_POLICY
from tests.api.v1.auth_helpers import ME
from tests.factories import Inbox, link_token, log_in, register, token, user

RESET = "/api/v1/auth/password-reset"
CHECK = "/api/v1/auth/password-reset/check"
NEW_PASSWORD = "a-brand-new-secret-9"
PAGE_HEADERS = {
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}


def assert_page(response: httpx.Response, status: int, heading: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    for name, value in PAGE_HEADERS.items():
        assert response.headers[name] == value
    assert f"<h1>{heading}</h1>" in response.text
    # Nothing on the page comes from anywhere: no script, no external asset.
    assert "<script" not in response.text
    assert not re.search(r"(src|href)=", response.text)
    return response.text


async def reset_link_token(client: httpx.AsyncClient, inbox: Inbox, email: str) -> str:
    assert (await client.post(RESET, json={"email": email})).status_code == 202
    return link_token(await inbox.one_to(email, "Reset your password"), "/reset-password")


async def verification_token(inbox: Inbox, email: str) -> str:
    return link_token(await inbox.one_to(email, "Welcome aboard"), "/verify-email")


def test_the_policy_allows_only_the_pages_own_style_and_forms() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/=]+'", directives["style-src"])
    assert "script-src" not in directives


async def test_a_reset_link_opens_a_form_and_the_form_sets_the_password(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await user(client)
    link = await reset_link_token(client, inbox, account.email)
    for _ in range(2):  # opened twice, as a mail scanner and then the person would
        page = assert_page(
            await client.get("/reset-password", params={"token": link}),
            200,
            "Choose a new password",
        )
    assert f'value="{link}"' in page
    form = {"token": link, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    # A browser under no-referrer posts with `Origin: null`; the token is the credential.
    done = await client.post("/reset-password", data=form, headers={"Origin": "null"})
    assert_page(done, 200, "Password changed")
    assert (await token(client, account.email, NEW_PASSWORD)).status_code == 200
    assert (await token(client, account.email, account.password)).status_code == 401
    assert (await client.get(ME, headers=account.headers)).status_code == 401
    again = await client.post("/reset-password", data=form)
    assert_page(again, 400, "This link is invalid or already used")


@pytest.mark.parametrize(
    ("password", "confirmation", "reason"),
    [
        ("short-1", "short-1", "at least 8 characters"),
        ("no-digits-here", "no-digits-here", "at least one digit"),
        ("x1" * 65, "x1" * 65, "at most 128 characters"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "not the same"),
    ],
)
async def test_a_refused_password_shows_the_form_again_with_the_reason(
    client: httpx.AsyncClient, inbox: Inbox, password: str, confirmation: str, reason: str
) -> None:
    account = await user(client)
    link = await reset_link_token(client, inbox, account.email)
    form = {"token": link, "new_password": password, "new_password_confirm": confirmation}
    page = assert_page(
        await client.post("/reset-password", data=form), 422, "Choose a new password"
    )
    assert reason in page
    assert f'value="{link}"' in page
    # Nothing was spent: the link still sets a password.
    form |= {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    assert (await client.post("/reset-password", data=form)).status_code == 200


@pytest.mark.parametrize("path", ["/reset-password", "/verify-email"])
async def test_a_bad_token_is_an_invalid_link_page(client: httpx.AsyncClient, path: str) -> None:
    invalid = "This link is invalid or already used"
    for query in ({"token": "not-a-token-" * 4}, {}, {"token": ""}, {"token": "x" * 5000}):
        assert_page(await client.get(path, params=query), 400, invalid)
    form = {"token": "not-a-token", "new_password": NEW_PASSWORD}
    form["new_password_confirm"] = NEW_PASSWORD
    assert_page(await client.post(path, data=form), 400, invalid)
    assert_page(await client.post(path, data={}), 400, invalid)


async def test_a_verification_link_asks_for_a_click_and_the_click_verifies(
    client: httpx.AsyncClient, inbox: Inbox
) -> None:
    account = await register(client)
    link = await verification_token(inbox, account.email)
    page = assert_page(
        await client.get("/verify-email", params={"token": link}), 200, "Verify your email"
    )
    assert '<form method="post" action="verify-email">' in page
    await client.get("/verify-email", params={"token": link})
    signed_in = await log_in(account, client)
    assert (await client.get(ME, headers=signed_in.headers)).json()["email_verified"] is False

    done = await client.post("/verify-email", data={"token": link}, headers={"Origin": "null"})
    assert_page(done, 200, "Email verified")
    assert (await client.get(ME, headers=signed_in.headers)).json()["email_verified"] is True
    used = await client.post("/verify-email", data={"token": link})
    assert_page(used, 400, "This link is invalid or already used")


async def test_the_pages_are_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/reset-password" not in paths
    assert "/verify-email" not in paths
    assert "/api/v1/auth/password-reset/check" in paths


async def test_check_says_whether_a_reset_token_would_be_accepted_and_spends_nothing(
    client: httpx.AsyncClient, inbox: Inbox, resources: Resources
) -> None:
    account = await user(client)
    link = await reset_link_token(client, inbox, account.email)
    for _ in range(2):
        assert (await client.post(CHECK, json={"token": link})).status_code == 204
    refused = await client.post(CHECK, json={"token": "x" * 43})
    assert refused.status_code == 400
    assert refused.json()["type"] == "urn:problem-type:invalid-token"
    confirm = {"token": link, "new_password": NEW_PASSWORD}
    assert (await client.post(f"{RESET}/confirm", json=confirm)).status_code == 204
    assert (await client.post(CHECK, json={"token": link})).status_code == 400
