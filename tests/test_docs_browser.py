"""Swagger UI and ReDoc render in a real browser from this server alone, with no internet.

Headless Chromium (Debian's `chromium` package, which .ci/run installs) is driven through
Playwright against uvicorn on a free local port. Every request the pages make is checked:
any to a host other than the server's is blocked and fails the test.
"""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from support.processes import ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# ReDoc always renders its vendor's logo from that vendor's CDN. The docs policy blocks it
# before any request is made, and ReDoc hides the image when it fails to load.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium: apt-get install chromium",
)


@pytest.fixture(scope="module")
async def base_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The app migrated and served by uvicorn, as `make run` does, on the embedded database."""
    data = tmp_path_factory.mktemp("browser")
    port = free_port()
    environment = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(data),
        "ENVIRONMENT": "local",
        "SQLITE_PATH": str(data / "app.db"),
        "DOCS_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alembic", "upgrade", "head", cwd=ROOT, env=environment
    )
    assert await migrate.wait() == 0
    server = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "uvicorn", "app.main:app", "--no-server-header"],
        *["--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(100):
                try:
                    await http.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("uvicorn did not start serving within 10 s")
        yield url
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


class OfflinePage:
    """A page whose requests to any host but the app's are blocked and recorded.

    Console errors are recorded too: the Content-Security-Policy stops a load from another
    host before any request is made, and says so only on the console.
    """

    def __init__(self, page: Page) -> None:
        self.page = page
        self.external: list[str] = []
        self.errors: list[str] = []
        self.blocked_by_policy: set[str] = set()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self.record_console_error)

    def record_console_error(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(
            f"'{url}' violates the following Content Security Policy" in message.text
            for url in self.blocked_by_policy
        ):
            self.errors.append(message.text)

    async def block_external(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            self.external.append(url)
            await route.abort()


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[OfflinePage]:
    context = await browser.new_context()
    page = OfflinePage(await context.new_page())
    await context.route("**/*", page.block_external)
    try:
        yield page
    finally:
        await context.close()
    assert page.external == [], "the docs must not reach any other host"
    assert page.errors == []


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
    await page.locator(".auth-btn-wrapper .btn-done").first.click()

    operation = page.locator("#operations-users-read_me")
    await operation.locator(".opblock-summary").click()
    await operation.locator(".try-out__btn").click()
    await operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tr.response td.response-col_status").first
    await status.wait_for(timeout=15_000)
    assert (await status.inner_text()).strip() == "200"
    body = await operation.locator(".live-responses-table .microlight").first.inner_text()
    assert email in body
