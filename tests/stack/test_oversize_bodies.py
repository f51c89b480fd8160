"""A body over MAX_REQUEST_BODY_BYTES gets the service's 413 problem, never a reset.

The service refuses it from its Content-Length. Were the connection then closed on the
unread bytes, the kernel would reset it while the sender is still writing: a proxy reports
its own 502, a client a broken pipe, and neither ever reads the 413.
"""

import asyncio
import socket

import httpx

from app.core.errors import PROBLEM_JSON
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
    # when the service has decided, as a proxy without keep-alive would be.
    port = stack.ports["api-1"]
    for _ in range(12):
        answer = await asyncio.to_thread(post_and_close, port, 3 * LIMIT)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert PROBLEM_JSON.encode() in answer
