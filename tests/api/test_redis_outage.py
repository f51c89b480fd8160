"""Redis stopping while the service runs: reads, writes and limits keep working."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import TEST_REDIS_URL, serve, variant
from tests.factories import user


class TcpProxy:
    """Forwards a local port to Redis until `stop()`, which drops every connection at once,
    as a Redis that dies or a network that partitions would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


@pytest.fixture
async def redis_through_proxy() -> AsyncIterator[tuple[TcpProxy, str]]:
    if TEST_REDIS_URL is None:
        pytest.skip("needs Redis: set TEST_REDIS_URL=redis://...")
    target = urlsplit(TEST_REDIS_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    port = await proxy.start()
    yield proxy, f"redis://127.0.0.1:{port}{target.path}"
    with contextlib.suppress(Exception):
        await proxy.stop()


async def test_reads_and_writes_survive_redis_stopping(
    client: httpx.AsyncClient,
    migrated: Settings,
    redis_through_proxy: tuple[TcpProxy, str],
) -> None:
    proxy, redis_url = redis_through_proxy
    settings = variant(migrated, redis_url=redis_url, rate_limit_default="1000/minute")
    async with serve(settings) as api:
        seller = await user(api)
        item = {"name": "Lamp", "description": "", "price": "20.00", "stock": 3}
        created = await api.post("/api/v1/items", json=item, headers=seller.headers)
        path = created.headers["location"]
        assert (await api.get(path)).status_code == 200  # cached in Redis now
        assert (await api.get("/health/ready")).status_code == 200

        await proxy.stop()

        read = await api.get(path)
        assert read.status_code == 200
        assert read.json()["stock"] == 3
        changed = await api.patch(path, json={"stock": 2}, headers=seller.headers)
        assert changed.status_code == 200
        assert (await api.get(path)).json()["stock"] == 2
        assert (await api.get("/api/v1/items")).status_code == 200
        assert (await api.get("/api/v1/users/me", headers=seller.headers)).status_code == 200
        ready = await api.get("/health/ready")
        assert ready.status_code == 200, "the service runs on its fallbacks; keep it in rotation"
        assert ready.json()["checks"]["redis"]["status"] == "degraded"
