import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.http.edge import API_CONTENT_SECURITY_POLICY, Edge
from app.main import create_app
from tests.conftest import asgi_client, running, variant
from tests.transport import VIA_NGINX, replica_url

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def echo_app(settings: Settings) -> FastAPI:
    application = create_app(settings)

    @application.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @application.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    return application


@pytest.fixture(scope="module")
async def hardened(migrated: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings = variant(
        migrated,
        max_request_body_bytes=2048,
        hsts_seconds=31536000,
        allowed_hosts=["api.example.com", "*.internal.example.com"],
        cors_origins=["https://app.example.com"],
        cors_allow_credentials=True,
    )
    application = echo_app(settings)
    async with (
        application.router.lifespan_context(application),
        asgi_client(application, host="api.example.com") as client,
    ):
        yield client


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_every_response_carries_the_security_headers(hardened: httpx.AsyncClient) -> None:
    for response in (
        await hardened.get("/health"),
        await hardened.get("/missing"),
        await hardened.get("/crash"),
    ):
        assert response.headers.items() >= SECURITY_HEADERS.items(), response.status_code
        assert response.headers["content-security-policy"] == API_CONTENT_SECURITY_POLICY
        assert response.headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains"
        )


async def test_hsts_is_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


async def test_declared_body_over_the_limit_is_refused_up_front(
    hardened: httpx.AsyncClient,
) -> None:
    assert (await hardened.post("/echo", content=b"x" * 2048)).json() == {"received": 2048}
    response = await hardened.post("/echo", content=b"x" * 2049)
    assert_problem(response, 413)
    assert "2048 bytes" in response.json()["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_streamed_body_over_the_limit_is_refused(hardened: httpx.AsyncClient) -> None:
    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"x" * 1000

    small = await hardened.post("/echo", content=chunks(2))
    assert "content-length" not in small.request.headers
    assert small.json() == {"received": 2000}
    assert_problem(await hardened.post("/echo", content=chunks(3)), 413)


async def test_unknown_host_is_a_400_problem(hardened: httpx.AsyncClient) -> None:
    items = "/api/v1/items"
    assert (await hardened.get(items, headers={"host": "db.internal.example.com"})).is_success
    response = await hardened.get(items, headers={"host": "evil.example.net"})
    assert_problem(response, 400)
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_probes_and_scrapes_answer_the_pods_address(hardened: httpx.AsyncClient) -> None:
    # Kubernetes probes and Prometheus address a pod by its IP, which no ALLOWED_HOSTS names.
    for path in ("/health", "/health/ready", "/metrics"):
        response = await hardened.get(
            replica_url(hardened, path), headers={"host": "10.1.2.3:8000"}
        )
        assert response.status_code == 200, path


async def test_a_missing_or_repeated_host_is_a_400_problem(migrated: Settings) -> None:
    application = create_app(migrated)
    for headers in ([], [(b"host", b"a.example"), (b"host", b"b.example")]):
        sent = await call_edge(application, headers)
        assert sent[0]["status"] == 400
        assert dict(sent[0]["headers"])[b"content-type"] == b"application/problem+json"


async def test_cors_allows_only_the_configured_origins(hardened: httpx.AsyncClient) -> None:
    preflight = {"access-control-request-method": "POST"}
    allowed = await hardened.options(
        "/echo", headers={"origin": "https://app.example.com", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    refused = await hardened.options(
        "/echo", headers={"origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = await hardened.get("/health", headers={"origin": "https://app.example.com"})
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    # A browser client must be able to tell a replayed order from a new one.
    assert "idempotent-replayed" in exposed


async def test_no_cors_headers_without_configured_origins(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cors_origins": "*", "cors_allow_credentials": True}, "explicit CORS_ORIGINS"),
        ({"cors_origins": "https://app.example.com/path"}, "not an origin"),
        ({"cors_origins": "app.example.com"}, "not an origin"),
        ({"allowed_hosts": "api.*.example.com"}, "not a host name"),
        ({"max_request_body_bytes": 10}, "greater than or equal"),
    ],
)
def test_unsafe_settings_are_refused_at_start_up(
    migrated: Settings, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        variant(migrated, **overrides)


async def test_large_responses_are_gzipped_and_small_ones_are_not(
    client: httpx.AsyncClient,
) -> None:
    headers = {"accept-encoding": "gzip"}
    schema = await client.get("/openapi.json", headers=headers)
    assert schema.headers["content-encoding"] == "gzip"
    assert int(schema.headers["content-length"]) < len(schema.content)
    assert "content-encoding" not in (await client.get("/health", headers=headers)).headers


async def test_no_server_software_version_is_named(client: httpx.AsyncClient) -> None:
    # uvicorn's header is off; nginx in front names itself, without its version.
    server = (await client.get("/health")).headers.get("server")
    assert server == ("nginx" if VIA_NGINX else None)


async def test_default_settings_serve_any_host(migrated: Settings) -> None:
    async with running(create_app(migrated)) as client:
        response = await client.get("/health", headers={"host": "anything.example"})
    assert response.status_code == 200


async def test_refusals_are_counted_in_metrics(migrated: Settings) -> None:
    async with running(echo_app(variant(migrated, max_request_body_bytes=1024))) as client:
        await client.post("/echo", content=b"x" * 1025)
        exposition = (await client.get(replica_url(client, "/metrics"))).text
    assert 'route="<unmatched>",status="413"' in exposition


async def call_edge(application: FastAPI, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """One HTTP/1.1 GET with exactly these headers, as a server would pass it on."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": "/health"}
    await application({**scope, "headers": headers, "query_string": b""}, receive, send)
    return sent


async def call_limited(
    settings: Settings, body: list[bytes], headers: dict[str, str]
) -> tuple[list[Message], int, list[int]]:
    """Run the edge with a 1 KiB body limit in front of nothing: what it sent, how many body
    chunks it read, and how many it had read when it sent each message."""
    chunks = [
        {"type": "http.request", "body": chunk, "more_body": index < len(body) - 1}
        for index, chunk in enumerate(body)
    ]
    read = 0
    sent: list[Message] = []
    reads_before: list[int] = []

    async def receive() -> Message:
        nonlocal read
        if read == len(chunks):
            return {"type": "http.disconnect"}
        read += 1
        return chunks[read - 1]

    async def send(message: Message) -> None:
        sent.append(message)
        reads_before.append(read)

    async def never_called(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the application must not see a refused body")

    size = sum(map(len, body))
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/upload",
        "headers": [(b"host", b"testserver"), (b"content-length", str(size).encode())]
        + [(name.encode(), value.encode()) for name, value in headers.items()],
    }
    edge = Edge(never_called, settings=variant(settings, max_request_body_bytes=1024))
    await edge(scope, receive, send)
    return sent, read, reads_before


async def test_a_declared_oversize_body_is_read_before_the_413_so_the_connection_lives(
    migrated: Settings,
) -> None:
    sent, read, _ = await call_limited(migrated, [b"x" * 1000] * 3, {})
    assert read == 3
    assert sent[0]["status"] == 413
    assert b"connection" not in dict(sent[0]["headers"])


async def test_a_body_past_the_discard_budget_gets_the_413_at_once_then_is_read_on(
    migrated: Settings,
) -> None:
    chunk = b"x" * (1024 * 1024)
    sent, read, reads_before = await call_limited(migrated, [chunk] * 8, {})
    start, problem, end = sent
    assert start["status"] == 413
    assert dict(start["headers"])[b"connection"] == b"close"
    # The whole problem goes out once the budget is spent, while the body still comes ...
    assert json.loads(problem["body"])["status"] == 413
    assert reads_before[0] == reads_before[1] < 8
    # ... and the connection closes only after the rest was read (or the sender hung up).
    assert read == reads_before[2] == 8
    assert end == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_client_waiting_for_100_continue_gets_the_413_without_a_read(
    migrated: Settings,
) -> None:
    sent, read, _ = await call_limited(migrated, [b"x" * 5000], {"expect": "100-continue"})
    assert read == 0
    assert sent[0]["status"] == 413
