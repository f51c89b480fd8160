"""Test clients through nginx: real HTTP to the production topology, with TEST_VIA_NGINX=1.

The app object a test built is served by a `uvicorn.Server` task in the session's event
loop, configured as the image's worker class configures it, behind nginx running
deploy/nginx/api.conf as scripts/stack.py renders it. A client's socket is bound to the
test's peer address (any 127.0.0.0/8 address works on Linux loopback), and nginx passes it
on in `X-Forwarded-For`, so the app sees that address as the client, as in production. The
default peer, 127.0.0.1, is also nginx's own address: the app sees it as the client either
way, and nginx overwrites whatever `X-Forwarded-For` a test sends.

Starting and stopping a front takes about 0.2 s, so the session's shared app keeps one for
the whole run (`shared_front`); an app built in a test gets one per client.
"""

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from app.core.config import Settings
from app.core.http.server import UvicornWorker
from support.nginx import start_nginx
from support.processes import Process, binary

VIA_NGINX = os.environ.get("TEST_VIA_NGINX", "") not in ("", "0")
# nginx connects to the app from this address; the app must trust it with X-Forwarded-For.
NGINX_ADDRESS = "127.0.0.1"
NGINX_NETWORK = ipaddress.ip_network(f"{NGINX_ADDRESS}/32")


def require_nginx() -> None:
    """Fail the run at start when nginx is missing: never fall back to in-process."""
    binary("nginx")


class _Server(uvicorn.Server):
    # Several servers run at once and stop in any order, so none may take over the signal
    # handlers (each restores the ones it found): Ctrl-C stays pytest's.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Front:
    """One app served by uvicorn, behind an nginx of its own."""

    def __init__(self, application: FastAPI) -> None:
        settings: Settings = application.state.settings
        nginx = NGINX_NETWORK.network_address
        if not any(nginx in network for network in settings.trusted_proxies):
            raise RuntimeError(
                f"an app behind nginx must trust {NGINX_ADDRESS} as a proxy, or every client "
                "looks like nginx: build its settings with tests.conftest.make_settings"
            )
        config = uvicorn.Config(
            application,
            # The tests run the lifespan themselves, around the clients.
            lifespan="off",
            log_config=None,
            access_log=False,
            **UvicornWorker.CONFIG_KWARGS,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self._nginx: Process | None = None
        self._prefix: Path | None = None
        self.url = ""
        self.upstream_url = ""

    async def start(self) -> None:
        listener = socket.socket()
        # As gunicorn's listeners: without it, uvicorn writing a response's head and body
        # apart waits for the peer's delayed ACK, 40 ms a request.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((NGINX_ADDRESS, 0))
        port: int = listener.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]))
        while not self._server.started:
            if self._task.done():
                listener.close()
                self._task.result()
                raise RuntimeError("uvicorn stopped before it started serving")
            await asyncio.sleep(0.001)
        self.upstream_url = f"http://{NGINX_ADDRESS}:{port}"
        self._prefix = Path(tempfile.mkdtemp(prefix="test-nginx-"))
        self._nginx, nginx_port = await asyncio.to_thread(start_nginx, self._prefix, [port])
        self.url = f"http://127.0.0.1:{nginx_port}"

    async def stop(self) -> None:
        try:
            if self._nginx is not None:
                await asyncio.to_thread(self._nginx.stop)
        finally:
            if self._task is not None:
                self._server.should_exit = True
                await self._task
            if self._prefix is not None:
                shutil.rmtree(self._prefix, ignore_errors=True)


_SHARED: dict[FastAPI, Front] = {}


@contextlib.asynccontextmanager
async def shared_front(application: FastAPI) -> AsyncIterator[None]:
    """Through nginx, one front for every client of `application` during the block."""
    if not VIA_NGINX:
        yield
        return
    front = Front(application)
    try:
        await front.start()
        _SHARED[application] = front
        yield
    finally:
        _SHARED.pop(application, None)
        await front.stop()


class _UntracedTransport(httpx.AsyncHTTPTransport):
    """The test's own requests, which an app's httpx instrumentation (process-wide) would
    otherwise trace, replacing the `traceparent` a test sends with its own."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with suppress_http_instrumentation():
            return await super().handle_async_request(request)


class NginxClient(httpx.AsyncClient):
    """A client of the app through nginx, from `peer`, naming `host` as the server.

    It uses the app's shared front when there is one, and starts one of its own otherwise,
    stopped when the client closes.
    """

    def __init__(self, application: FastAPI, peer: str, host: str) -> None:
        super().__init__(
            transport=_UntracedTransport(local_address=peer),
            headers={"Host": host},
            # No deadline, as in process: nginx's proxy_read_timeout bounds every answer.
            timeout=None,
            trust_env=False,
        )
        self._application = application
        self._own: Front | None = None

    @property
    def front(self) -> Front:
        front = self._own or _SHARED.get(self._application)
        if front is None:
            raise RuntimeError("use the client in `async with`: that starts its front")
        return front

    async def __aenter__(self) -> Self:
        if self._application not in _SHARED:
            self._own = Front(self._application)
            try:
                await self._own.start()
            except BaseException:
                await self._own.stop()
                raise
        self.base_url = httpx.URL(self.front.url)
        try:
            return await super().__aenter__()
        except BaseException:
            await self._stop_own()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc_value, traceback)
        finally:
            await self._stop_own()

    async def _stop_own(self) -> None:
        if self._own is not None:
            own, self._own = self._own, None
            await own.stop()


@contextlib.contextmanager
def threaded_front(application: FastAPI) -> Iterator[str]:
    """nginx's URL in front of `application`, served with its lifespan on a thread and an
    event loop of its own: for synchronous tests (the contract fuzzing), which would block
    the suite's loop and with it any server running there."""
    started = threading.Event()
    url: list[str] = []
    failure: list[BaseException] = []
    stopping: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        stopping.append((asyncio.get_running_loop(), stop))
        async with application.router.lifespan_context(application):
            front = Front(application)
            try:
                await front.start()
                url.append(front.url)
                started.set()
                await stop.wait()
            finally:
                await front.stop()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:  # reported to the test's thread below
            failure.append(error)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="threaded-front", daemon=True)
    thread.start()
    started.wait(timeout=60)
    if not url:
        raise RuntimeError("the threaded front did not start") from (
            failure[0] if failure else None
        )
    try:
        yield url[0]
    finally:
        loop, stop = stopping[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def replica_url(client: httpx.AsyncClient, path: str) -> str:
    """Where probes and scrapes send `path`: to the app itself, never through nginx (which
    refuses /metrics), as they reach each replica in production."""
    if isinstance(client, NginxClient):
        return f"{client.front.upstream_url}{path}"
    return path
