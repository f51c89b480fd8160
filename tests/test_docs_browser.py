"""Swagger UI and ReDoc render in a real browser from this server alone, with no internet
(tests/browser.py serves the app and drives Chromium)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.browser import NEEDS_CHROMIUM, OfflinePage, browser, offline, served_app

__all__ = ["browser", "offline"]

# ReDoc always renders its vendor's logo from that vendor's CDN. The docs policy blocks it
# before any request is made, and ReDoc hides the image when it fails to load.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
async def base_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with served_app(tmp_path_factory.mktemp("browser")) as url:
        yield url


async def test_swagger_ui_renders_the_operations(offline: OfflinePage, base_url: str) -> None:
    page = offline.page
    await page.goto(f"{base_url}/docs")
    health = page.locator(".opblock-summary-path", has_text="/health/ready")
    await health.wait_for(timeout=15_000)
    assert await page.locator(".opblock").count() >= 2
    assert await page.locator(".information-container .title").inner_text() != ""


async def test_redoc_renders_the_operations(offline: OfflinePage, base_url: str) -> None:
    offline.blocked_by_policy.add(REDOC_LOGO)
    page = offline.page
    await page.goto(f"{base_url}/redoc")
    heading = page.get_by_role("heading", name="Readiness: the database", exact=False)
    await heading.first.wait_for(timeout=15_000)


async def test_swagger_authorize_then_call_users_me(offline: OfflinePage, base_url: str) -> None:
    email, password = "swagger-user@example.com", "swagger-pass-1"
    async with httpx.AsyncClient(base_url=base_url) as http:
        registered = await http.post(
            "/api/v1/users", json={"email": email, "full_name": "Swagger", "password": password}
        )
        assert registered.status_code == 201
    page = offline.page
    await page.goto(f"{base_url}/docs")
    await page.locator(".btn.authorize").first.click()
    await page.locator("#oauth_username").fill(email)
    await page.locator("#oauth_password").fill(password)
    await page.locator(".auth-btn-wrapper .btn.authorize").first.click()
    # Swagger offers to log out once the token endpoint has answered: closing the dialog
    # before that would send the call below without a token.
    await page.get_by_role("button", name="Logout").first.wait_for(timeout=15_000)
    await page.locator(".auth-btn-wrapper .btn-done").first.click()

    operation = page.locator("#operations-users-read_me")
    await operation.locator(".opblock-summary").click()
    # The operation's padlock closes once Swagger holds the token for its scheme.
    await operation.get_by_label("authorization button locked").first.wait_for(timeout=15_000)
    await operation.locator(".try-out__btn").click()
    await operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tr.response td.response-col_status").first
    await status.wait_for(timeout=15_000)
    body = await operation.locator(".live-responses-table .microlight").first.inner_text()
    assert (await status.inner_text()).strip() == "200", body
    assert email in body
