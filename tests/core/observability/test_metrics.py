import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from app.core.http.metrics import UNMATCHED_ROUTE
from app.core.observability.metrics import FLUSH_SECONDS
from app.main import create_app
from support.deployment import dockerfile_command
from support.processes import ROOT, free_port
from tests.conftest import running, variant
from tests.transport import replica_url

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def requests_counted(samples: Samples, route: str, status: str, method: str = "GET") -> float:
    labels = frozenset({"method": method, "route": route, "status": status}.items())
    return samples.get(("http_requests_total", labels), 0.0)


def widget_app(settings: Settings) -> FastAPI:
    application = create_app(settings)

    @application.get("/widgets/{widget_id}")
    async def read_widget(widget_id: int) -> dict[str, int]:
        return {"id": widget_id}

    return application


async def test_requests_are_counted_by_route_template(migrated: Settings) -> None:
    async with running(widget_app(migrated)) as client:
        before = parse((await client.get(replica_url(client, "/metrics"))).text)
        for widget_id in (1, 2, 3):
            assert (await client.get(f"/widgets/{widget_id}")).status_code == 200
        await client.get("/no/such/path")
        response = await client.get(replica_url(client, "/metrics"))

    assert response.headers["content-type"].startswith("text/plain")
    after = parse(response.text)
    template = "/widgets/{widget_id}"
    assert requests_counted(after, template, "200") - requests_counted(before, template, "200") == 3
    assert requests_counted(after, UNMATCHED_ROUTE, "404") > requests_counted(
        before, UNMATCHED_ROUTE, "404"
    )
    assert not any("/widgets/1" in dict(labels).get("route", "") for _, labels in after)
    count = frozenset({"method": "GET", "route": template, "status": "200"}.items())
    assert after[("http_request_duration_seconds_count", count)] >= 3


async def test_metrics_exposes_every_documented_family(migrated: Settings) -> None:
    async with running(create_app(migrated)) as client:
        exposition = (await client.get(replica_url(client, "/metrics"))).text
    families = {family.name for family in text_string_to_metric_families(exposition)}
    assert families >= {
        "http_requests",
        "http_request_duration_seconds",
        "http_requests_in_flight",
        "db_pool_checked_out_connections",
        "db_pool_size_connections",
        "cache_hits",
        "cache_misses",
        "rate_limit_rejections",
    }


async def test_metrics_can_be_turned_off_and_never_appear_in_openapi(migrated: Settings) -> None:
    async with running(create_app(migrated)) as client:
        assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]
    async with running(create_app(variant(migrated, metrics_enabled=False))) as client:
        assert (await client.get(replica_url(client, "/metrics"))).status_code == 404


def test_gunicorn_workers_report_one_merged_total(tmp_path: Path) -> None:
    """Any worker answering a scrape reports the requests every worker served."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    port = free_port()
    command = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in dockerfile_command()]
    environment = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "ENVIRONMENT": "local",
        "SQLITE_PATH": str(tmp_path / "app.db"),
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    server = subprocess.Popen(command, cwd=ROOT, env=environment)  # noqa: S603
    # A new connection per request lets the kernel spread them over both workers.
    limits = httpx.Limits(max_keepalive_connections=0)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    http.get("/metrics")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail("gunicorn did not start serving within 20 s")
                    time.sleep(0.1)
            responses = [http.get("/health") for _ in range(20)]
            # Each worker adds what it counted to the shared files once a second.
            time.sleep(FLUSH_SECONDS * 1.5)
            scrapes = [parse(http.get("/metrics").text) for _ in range(4)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert all(response.status_code == 200 for response in responses)
    assert all("server" not in response.headers for response in responses)
    for samples in scrapes:
        assert requests_counted(samples, "/health", "200") == 20, json.dumps(
            {str(key): value for key, value in samples.items() if "health" in str(key)}
        )
    assert not (metrics_dir / "counter_999999.db").exists()


async def test_rate_limit_rejections_are_counted_by_scope(migrated: Settings) -> None:
    strict = variant(migrated, rate_limit_register="1/hour")
    async with running(create_app(strict)) as client:
        before = parse((await client.get(replica_url(client, "/metrics"))).text)
        statuses = []
        for attempt in range(2):
            response = await client.post(
                "/api/v1/users",
                json={
                    "email": f"metrics{attempt}-{time.time_ns()}@example.com",
                    "full_name": "M",
                    "password": "metrics-pass-1",
                },
            )
            statuses.append(response.status_code)
        after = parse((await client.get(replica_url(client, "/metrics"))).text)
    assert statuses == [201, 429]
    key = ("rate_limit_rejections_total", frozenset({("scope", "register")}))
    assert after[key] == before.get(key, 0.0) + 1


async def test_routes_of_included_routers_are_labelled_with_their_full_path(
    client: httpx.AsyncClient,
) -> None:
    before = parse((await client.get(replica_url(client, "/metrics"))).text)
    assert (await client.get("/api/v1/items")).status_code == 200
    assert (await client.get("/api/v1/items/12345")).status_code == 404
    after = parse((await client.get(replica_url(client, "/metrics"))).text)

    for template, status in (("/api/v1/items", "200"), ("/api/v1/items/{item_id}", "404")):
        counted = requests_counted(after, template, status) - requests_counted(
            before, template, status
        )
        assert counted == 1, template
    assert not any(dict(labels).get("route") == "/items/{item_id}" for _, labels in after)
