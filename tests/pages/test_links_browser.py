"""From the link in a real email to the success page, in headless Chromium: the service
serves the app, mails through SMTP (captured here) and the browser follows the link."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.browser import NEEDS_CHROMIUM, OfflinePage, browser, offline, served_app
from tests.factories import body, link_token, unique_email
from tests.smtp import SmtpServer, smtp_server

__all__ = ["browser", "offline"]

pytestmark = NEEDS_CHROMIUM

PASSWORD = "first-secret-1"
NEW_PASSWORD = "second-secret-2"


@pytest.fixture(scope="module")
async def mail() -> AsyncIterator[SmtpServer]:
    async with smtp_server(username="mailer", password="mail-secret") as server:
        yield server


@pytest.fixture(scope="module")
async def base_url(
    tmp_path_factory: pytest.TempPathFactory, mail: SmtpServer
) -> AsyncIterator[str]:
    smtp = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail.port),
        "SMTP_USERNAME": mail.username,
        "SMTP_PASSWORD": mail.password,
        "SMTP_SECURITY": "none",
        "OUTBOX_POLL_INTERVAL": "0.2",
    }
    async with served_app(tmp_path_factory.mktemp("pages"), **smtp) as url:
        yield url


async def mailed_link(mail: SmtpServer, to: str, subject: str, page: str) -> str:
    """The `page` link of the next email with `subject` to `to`, as its text shows it."""
    while True:
        received = await mail.next_message()
        if received.message["To"] == to and received.message["Subject"] == subject:
            token = link_token(received.message, page)
            return next(word for word in body(received.message).split() if f"token={token}" in word)


async def test_a_reset_link_from_the_email_to_a_new_password(
    offline: OfflinePage, base_url: str, mail: SmtpServer
) -> None:
    email = unique_email("browser")
    async with httpx.AsyncClient(base_url=base_url) as http:
        account = {"email": email, "full_name": "Ada", "password": PASSWORD}
        assert (await http.post("/api/v1/users", json=account)).status_code == 201
        asked = await http.post("/api/v1/auth/password-reset", json={"email": email})
        assert asked.status_code == 202
    link = await mailed_link(mail, email, "Reset your password", "/reset-password")
    assert link.startswith(f"{base_url}/reset-password?token=")

    page = offline.page
    await page.goto(link)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("The same password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await page.get_by_role("heading", name="Password changed").wait_for()

    async with httpx.AsyncClient(base_url=base_url) as http:
        form = {"username": email, "password": NEW_PASSWORD}
        assert (await http.post("/api/v1/auth/token", data=form)).status_code == 200


async def test_a_mismatched_password_shows_the_reason_and_the_form_still_works(
    offline: OfflinePage, base_url: str, mail: SmtpServer
) -> None:
    email = unique_email("browser")
    async with httpx.AsyncClient(base_url=base_url) as http:
        account = {"email": email, "full_name": "Ada", "password": PASSWORD}
        assert (await http.post("/api/v1/users", json=account)).status_code == 201
        await http.post("/api/v1/auth/password-reset", json={"email": email})
    link = await mailed_link(mail, email, "Reset your password", "/reset-password")

    # The browser reports the refusal's status on its console, as for any 4xx page.
    offline.expected_errors.add("status of 422")
    page = offline.page
    await page.goto(link)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("The same password again").fill(NEW_PASSWORD + "x")
    await page.get_by_role("button", name="Change password").click()
    await page.get_by_role("alert").filter(has_text="not the same").wait_for()
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("The same password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await page.get_by_role("heading", name="Password changed").wait_for()


async def test_a_verification_link_from_the_email_verifies_the_address(
    offline: OfflinePage, base_url: str, mail: SmtpServer
) -> None:
    email = unique_email("browser")
    async with httpx.AsyncClient(base_url=base_url) as http:
        account = {"email": email, "full_name": "Ada", "password": PASSWORD}
        assert (await http.post("/api/v1/users", json=account)).status_code == 201
    link = await mailed_link(mail, email, "Welcome aboard", "/verify-email")

    page = offline.page
    await page.goto(link)
    await page.get_by_role("button", name="Verify").click()
    await page.get_by_role("heading", name="Email verified").wait_for()

    async with httpx.AsyncClient(base_url=base_url) as http:
        form = {"username": email, "password": PASSWORD}
        pair = (await http.post("/api/v1/auth/token", data=form)).json()
        me = await http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.json()["email_verified"] is True
