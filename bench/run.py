"""Throughput and latency of the hot paths: `make bench`.

Starts the service with uvicorn (one worker, access log off, as in production) on a free
local port, loads demo data, then drives each path with keep-alive HTTP/1.1 connections
from this process for a fixed time and prints requests/s and latency percentiles. Uses the
embedded SQLite database unless DATABASE_URL (and REDIS_URL) are set. Figures are for
comparing changes on one machine; the client shares the machine's cores with the server.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        ordered = sorted(self.latencies) or [0.0]

        def percentile(share: float) -> float:
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

        return (
            f"{self.name:<34} {self.requests / self.seconds:>9.0f} req/s"
            f"   p50 {percentile(0.50):6.1f} ms   p99 {percentile(0.99):6.1f} ms"
            f"   mean {statistics.fmean(ordered) * 1000:6.1f} ms   errors {self.errors}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def connection(port: int, request: bytes, deadline: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status, _ = await read_response(reader)
            result.latencies.append(time.perf_counter() - started)
            result.requests += 1
            result.errors += status >= 400
    finally:
        writer.close()


async def measure(
    name: str, port: int, path: str, headers: dict[str, str], connections: int, seconds: float
) -> Result:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    warmup = Result(name, 0, 0, 1.0, [])
    await asyncio.gather(
        *(connection(port, request, time.perf_counter() + 1.0, warmup) for _ in range(4))
    )
    result = Result(name, 0, 0, seconds, [])
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(connection(port, request, deadline, result) for _ in range(connections)))
    return result


async def call(port: int, method: str, path: str, body: bytes, content_type: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    status, payload = await read_response(reader)
    writer.close()
    if status >= 400:
        raise RuntimeError(f"{method} {path}: {status} {payload[:200]!r}")
    return payload


async def wait_until_serving(port: int) -> None:
    for _ in range(200):
        try:
            await call(port, "GET", "/health", b"", "text/plain")
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit("the server did not start")


async def main(connections: int, seconds: float, items: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-"))
    environment = os.environ | {
        "SQLITE_PATH": str(data / "bench.db"),
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_ENABLED": "false",
    }
    python = sys.executable
    migrate = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "alembic",
        "upgrade",
        "head",
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await migrate.wait():
        raise SystemExit("migration failed")
    seed = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "app.cli",
        "seed-demo",
        "--users",
        "5",
        "--items",
        str(items),
        "--posts",
        "50",
        "--orders",
        "50",
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
    )
    if await seed.wait():
        raise SystemExit("loading demo data failed")

    port = free_port()
    server = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "uvicorn",
        "app.main:app",
        "--port",
        str(port),
        "--no-access-log",
        "--no-server-header",
        cwd=ROOT,
        env=environment,
    )
    try:
        await wait_until_serving(port)
        pair = json.loads(
            await call(
                port,
                "POST",
                "/api/v1/auth/token",
                b"username=demo1%40example.com&password=demo-password-1",
                "application/x-www-form-urlencoded",
            )
        )
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        backend = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
        cache = "Redis" if os.environ.get("REDIS_URL") else "in-process"
        print(
            f"{backend} database, {cache} cache, 1 uvicorn worker, "
            f"{connections} connections, {seconds:g} s per path, {items} items"
        )
        cases = [
            ("GET /health", "/health", {}),
            ("GET /api/v1/items/{id} (cached)", "/api/v1/items/1", {}),
            ("GET /api/v1/items?limit=20 (cached)", "/api/v1/items?limit=20", {}),
            ("GET /api/v1/items?q=lamp (cached)", "/api/v1/items?q=lamp", {}),
            ("GET /api/v1/users/me (auth path)", "/api/v1/users/me", bearer),
            ("GET /api/v1/orders (auth + ORM)", "/api/v1/orders", bearer),
        ]
        for name, path, headers in cases:
            print((await measure(name, port, path, headers, connections, seconds)).line())
    finally:
        server.terminate()
        await server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--items", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.connections, arguments.seconds, arguments.items))
