"""A body over MAX_REQUEST_BODY_BYTES gets the service's 413 problem, never a reset.

The service refuses it from its Content-Length. Were the connection then closed on the
unread bytes, the kernel would reset it while the sender is still writing: a proxy reports
its own 502, a client a broken pipe, and neither ever reads the 413.
"""

import asyncio
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.errors import PROBLEM_JSON
from app.core.http.edge import DISCARD_MIN_BYTES
from support.nginx import start_nginx
from support.stack import Stack
from tests.conftest import RUNS_WITH_POSTGRES

pytestmark = RUNS_WITH_POSTGRES

LIMIT = 1024 * 1024


async def test_every_oversize_body_gets_the_service_413_through_nginx(
    nginx: httpx.AsyncClient,
) -> None:
    # Over the service's limit, under nginx's client_max_body_size: the service must answer.
    body = b"x" * (LIMIT + 960 * 1024)
    statuses = []
    for _ in range(12):
        response = await nginx.post(
            "/api/v1/users", content=body, headers={"Content-Type": "application/json"}
        )
        statuses.append(response.status_code)
        assert response.headers["content-type"] == PROBLEM_JSON, response.text
        assert response.json()["status"] == 413
    assert statuses == [413] * 12


def post_and_close(port: int, size: int) -> bytes:
    """Send a whole body on a connection that closes after the answer; the answer."""
    head = (
        "POST /api/v1/users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode() + b"x" * size)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


async def test_a_sender_still_writing_reads_the_413_on_a_closing_connection(
    stack: Stack,
) -> None:
    # Three times the limit, more than the socket buffers hold: the sender is still writing
    # when the service has decided, as a proxy without keep-alive would be. The larger size
    # is past what the service reads before answering: it answers, then reads on.
    port = stack.ports["api-1"]
    for size in (3 * LIMIT, 3 * DISCARD_MIN_BYTES):
        for _ in range(12):
            answer = await asyncio.to_thread(post_and_close, port, size)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            assert PROBLEM_JSON.encode() in answer


# A proxy as many run it: nginx's defaults (HTTP/1.0 upstream, a new connection for each
# request, a failed send retried on the other replica) and a body limit far above the
# service's, so bodies arrive that are larger than the service reads before answering.
STOCK_SITE = """
upstream api {
    server api:8000;
}
server {
    listen 8000;
    client_max_body_size 64m;
    location / {
        proxy_pass http://api;
    }
}
"""
SHIPPED_SITE = (Path(__file__).parents[2] / "deploy/nginx/api.conf").read_text()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(STOCK_SITE, id="stock"),
        pytest.param(
            SHIPPED_SITE.replace("client_max_body_size 2m;", "client_max_body_size 64m;"),
            id="shipped-with-a-larger-body-limit",
        ),
    ],
)
def lax_nginx(request: pytest.FixtureRequest, stack: Stack) -> Iterator[tuple[str, Path]]:
    """Another nginx in front of the stack's two replicas: its URL and its error log."""
    # Under the stack's directory, which nginx's unprivileged workers can reach.
    prefix = Path(tempfile.mkdtemp(prefix="nginx-", dir=stack.root))
    upstreams = [stack.ports["api-1"], stack.ports["api-2"]]
    process, port = start_nginx(prefix, upstreams, site=request.param)
    try:
        yield f"http://127.0.0.1:{port}", prefix / "error.log"
    finally:
        process.stop()


async def test_a_body_past_what_the_service_reads_still_gets_its_413_through_any_nginx(
    lax_nginx: tuple[str, Path],
) -> None:
    url, error_log = lax_nginx
    # Three times what the service reads before it answers: it answers while nginx sends.
    body = b"x" * (3 * DISCARD_MIN_BYTES)
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(30):
            response = await client.post(
                "/api/v1/users", content=body, headers={"Content-Type": "application/json"}
            )
            statuses.append(response.status_code)
            assert response.headers["content-type"] == PROBLEM_JSON, response.text
            assert response.json()["status"] == 413
    assert statuses == [413] * 30
    # A refused body is no failure of the replica: nginx keeps sending traffic to both.
    assert "upstream server temporarily disabled" not in error_log.read_text()
