"""Headless Chromium against the app served by uvicorn, as `make run` serves it.

Debian's `chromium` package (which .ci/run installs) is driven through Playwright; the
tests using it skip where it is absent. Every request a page makes is checked: any to a
host other than the server's is blocked and fails the test.
"""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium: apt-get install chromium",
)


@asynccontextmanager
async def served_app(data: Path, **settings: str) -> AsyncIterator[str]:
    """The app migrated and served by uvicorn, as `make run` does, on the embedded database
    in `data`, with `settings` added to its environment; its base URL."""
    port = free_port()
    environment = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(data),
        "ENVIRONMENT": "local",
        "SQLITE_PATH": str(data / "app.db"),
        "DOCS_ENABLED": "true",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **settings,
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
    """One Chromium for a module's tests."""
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
        # Console errors a test expects, by a part of their text (a page answered 422).
        self.expected_errors: set[str] = set()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self.record_console_error)

    def record_console_error(self, message: ConsoleMessage) -> None:
        if (
            message.type == "error"
            and not any(
                f"'{url}' violates the following Content Security Policy" in message.text
                for url in self.blocked_by_policy
            )
            and not any(expected in message.text for expected in self.expected_errors)
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
    assert page.external == [], "a page must not reach any other host"
    assert page.errors == []
