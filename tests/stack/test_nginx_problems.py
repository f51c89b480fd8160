"""What nginx answers itself (deploy/nginx/api.conf) is a problem+json, as the service's
own errors are: a request it cannot parse, the path it hides (/metrics), a head or a body
over its own limits, and no replica answering. An nginx with nothing behind it shows each."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.errors import PROBLEM_JSON
from support.nginx import start_nginx
from support.processes import Unavailable, free_port
from tests.conftest import RUNS_WITH_POSTGRES

pytestmark = RUNS_WITH_POSTGRES


@pytest.fixture(scope="module")
def nginx_alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx with the shipped configuration, its one upstream refusing connections."""
    prefix: Path = tmp_path_factory.mktemp("nginx")
    try:
        process, port = start_nginx(prefix, [free_port()])
    except Unavailable as missing:
        pytest.skip(str(missing))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["request_id"] == response.headers["x-request-id"]
    assert len(response.headers.get_list("x-request-id")) == 1
    return body


async def test_no_replica_answering_is_the_service_503(nginx_alone: str) -> None:
    async with httpx.AsyncClient(base_url=nginx_alone) as client:
        response = await client.get("/api/v1/items/7")
        quoted = await client.get('/api/v1/items/"}')

    assert problem(response, 503)["instance"] == "/api/v1/items/7"
    assert response.headers["retry-after"] == "1"
    # A path JSON would need escaped is not copied into the body, which stays valid JSON.
    assert problem(quoted, 503)["instance"] == "/"


async def test_the_path_nginx_keeps_to_itself_is_a_404_problem(nginx_alone: str) -> None:
    async with httpx.AsyncClient(base_url=nginx_alone) as client:
        response = await client.get("/metrics")

    assert problem(response, 404)["instance"] == "/metrics"


async def test_nginx_own_limits_answer_with_problems(nginx_alone: str) -> None:
    async with httpx.AsyncClient(base_url=nginx_alone) as client:
        body = await client.post("/api/v1/items", content=b"x" * (3 * 1024 * 1024))
        head = await client.get("/api/v1/items", headers={"X-Padding": "x" * (40 * 1024)})

    problem(body, 413)
    problem(head, 431)


def test_a_request_nginx_cannot_parse_is_a_400_problem(nginx_alone: str) -> None:
    port = int(nginx_alone.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n")
        raw = b""
        while chunk := connection.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    body = json.loads(payload)
    assert body["status"] == 400
    assert f"x-request-id: {body['request_id']}".encode() in head.lower()
