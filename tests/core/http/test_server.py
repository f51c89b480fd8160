"""The servers as they run: `make serve`'s uvicorn and the image's gunicorn, as processes.

Each test starts its server on a free port with a SQLite database in a temporary directory
and talks to it over real sockets.
"""

import contextlib
import json
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.processes import ROOT, free_port
from support.serving import (
    Command,
    Served,
    environment,
    gunicorn_command,
    h11_command,
    make_serve_command,
    server,
)
from tests.conftest import RUNS_WITH_POSTGRES, make_settings
from tests.migrations import upgrade_to_head

pytestmark = RUNS_WITH_POSTGRES

STRONG_KEY = secrets.token_urlsafe(48)


COMMANDS: dict[str, Command] = {
    "make serve": make_serve_command,
    "uvicorn h11": h11_command,
    "gunicorn": gunicorn_command,
}


def raw_request(host: str, port: int, head: bytes) -> tuple[bytes, bool]:
    """Send a request head; the whole answer, and whether the server closed the connection."""
    with socket.create_connection((host, port), timeout=5) as connection:
        # The server may stop reading and answer before the head is complete.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(65536)
        status_and_headers, _, body = answer.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in status_and_headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        while len(body) < length:
            body += connection.recv(65536)
        closed = False
        if b"\r\nconnection: close" in status_and_headers.lower():
            with contextlib.suppress(ConnectionResetError):
                closed = connection.recv(1) == b""
        return status_and_headers + b"\r\n\r\n" + body, closed


def header_block(size: int) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * size + b"\r\n\r\n"


@pytest.fixture(scope="module", params=list(COMMANDS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Each way the app is served, on a migrated database, shared by this module's tests."""
    directory = tmp_path_factory.mktemp("served")
    upgrade_to_head(make_settings(None, directory / "app.db"))
    env = environment(directory, RATE_LIMIT_DEFAULT="50/minute")
    with server(COMMANDS[request.param], env) as running:
        yield running


def test_oversized_request_headers_get_a_431_and_the_connection_is_closed(served: Served) -> None:
    host, port = served.host, served.port
    # 32 KiB: the parser refuses it before buffering; 17 KiB: the middleware does.
    for size in (32 * 1024, 17 * 1024):
        answer, closed = raw_request(host, port, header_block(size))
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        assert lines[0].startswith("HTTP/1.1 431"), (size, lines[0])
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert "x-request-id" in headers
        problem = json.loads(body)
        assert problem["status"] == 431
        assert problem["instance"] == "/health"
        assert closed, size
    # Headers within the limit are served as before.
    answer, _ = raw_request(host, port, header_block(15 * 1024))
    assert answer.startswith(b"HTTP/1.1 200")


def test_x_forwarded_for_from_an_untrusted_peer_does_not_change_the_client(
    served: Served,
) -> None:
    with httpx.Client(base_url=f"http://{served.host}:{served.port}") as http:
        remaining = [
            int(
                http.get(
                    "/api/v1/items", headers={"X-Forwarded-For": f"203.0.113.{forged}"}
                ).headers["ratelimit-remaining"]
            )
            for forged in (1, 2, 3)
        ]
    # One client, one budget: every forged address spent from the same one.
    assert remaining == [49, 48, 47]


def run_refused(tmp_path: Path, *extra: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = environment(tmp_path, ENVIRONMENT="production", SECRET_KEY=STRONG_KEY) | overrides
    env.pop("WEB_CONCURRENCY")
    return subprocess.run(  # noqa: S603 - the project's own command
        [*gunicorn_command(free_port()), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_gunicorn_exits_with_one_line_on_a_refused_production_configuration(
    tmp_path: Path,
) -> None:
    result = run_refused(tmp_path)
    assert result.returncode != 0
    refusals = [line for line in result.stderr.splitlines() if line.startswith("refusing")]
    assert refusals == [refusals[0]]
    assert refusals[0].startswith("refusing to start in production: DATABASE_URL is unset")
    assert "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr
    assert not list(tmp_path.glob("prometheus-*"))


def test_gunicorn_workers_count_towards_the_redis_requirement(tmp_path: Path) -> None:
    database = {"DATABASE_URL": "postgresql+asyncpg://app@127.0.0.1:9/app"}
    result = run_refused(tmp_path, "--workers", "2", **database)
    assert result.returncode != 0
    assert "refusing to start in production: REDIS_URL is unset" in result.stderr


def test_gunicorn_logs_json_lines_without_control_socket_errors_or_leftovers(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o500)
    (tmp_path / "tmp").mkdir()
    env = environment(
        tmp_path, HOME=str(home), TMPDIR=str(tmp_path / "tmp"), LOG_FORMAT="json", LOG_LEVEL="INFO"
    )
    with server(gunicorn_command, env) as served:
        assert httpx.get(f"http://{served.host}:{served.port}/health").status_code == 200
    assert served.process.returncode == 0
    lines = [line for line in served.output.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    loggers = {entry["logger"] for entry in entries}
    assert {"gunicorn.error", "uvicorn.error", "app.request"} <= loggers
    assert not any("color_message" in entry for entry in entries)
    assert not any("Control server" in entry["message"] for entry in entries)
    assert not list((tmp_path / "tmp").glob("prometheus-*"))


def worker_pids(master: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def test_a_reload_keeps_the_metrics_directory_and_the_exit_still_removes_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "tmp").mkdir()
    env = environment(tmp_path, TMPDIR=str(tmp_path / "tmp"), WEB_CONCURRENCY="2")
    with server(gunicorn_command, env) as served, httpx.Client() as http:
        base = f"http://{served.host}:{served.port}"
        for _ in range(5):
            assert http.get(f"{base}/health").status_code == 200
        (metrics_dir,) = (tmp_path / "tmp").glob("prometheus-*")
        before = worker_pids(served.process.pid)
        # SIGHUP: gunicorn reads its configuration again and replaces every worker.
        served.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while worker_pids(served.process.pid) & before or len(worker_pids(served.process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers were not replaced within 20 s"
            time.sleep(0.1)
        assert http.get(f"{base}/health").status_code == 200
        assert list((tmp_path / "tmp").glob("prometheus-*")) == [metrics_dir]
        scrape = http.get(f"{base}/metrics").text
        # The replaced workers' counts are still in the totals.
        counted = re.search(
            r'http_requests_total\{[^}]*route="/health",status="200"} (\S+)', scrape
        )
        assert counted
        assert float(counted[1]) >= 6
    assert served.process.returncode == 0
    assert not metrics_dir.exists()
