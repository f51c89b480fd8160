"""The deployment files checked against the application they deploy.

Compose, the Dockerfile, nginx, Prometheus and the Grafana dashboard name commands, modules,
settings, routes and metrics; each is checked to exist in the code, so a rename in the code
fails here instead of in a container.
"""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from app.core.config import Settings
from app.core.http.server import request_head_limit
from app.core.observability import metrics
from deploy.healthcheck import host_header
from support.deployment import (
    dockerfile_command,
    dockerfile_instructions,
    setting_names,
    with_compose_defaults,
)
from support.processes import ROOT
from support.serving import environment, gunicorn_command, server
from tests.transport import replica_url

APP_SERVICES = ("migrate", "api", "worker")

# What the image's health check, Kubernetes' probes and Prometheus ask for.
PROBED_PATHS = ("/health", "/health/ready", "/metrics")
NGINX = (ROOT / "deploy/nginx/api.conf").read_text()


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document["services"]  # type: ignore[no-any-return]


def graceful_timeout() -> int:
    command = dockerfile_command()
    return int(command[command.index("--graceful-timeout") + 1])


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_one_image_is_built_once_and_run_by_every_app_service(services: dict[str, Any]) -> None:
    built = [name for name, service in services.items() if "build" in service]
    assert built == ["migrate"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        # Settings and secrets come from .env at run time, never from the image.
        assert services[name]["env_file"] == ".env"


def test_every_app_command_exists(services: dict[str, Any]) -> None:
    worker = services["worker"]["command"]
    assert worker[:2] == ["python", "-m"]
    importlib.import_module(worker[2])
    assert services["migrate"]["command"][0] == "alembic"
    assert (ROOT / "alembic.ini").exists()
    # api runs the image's CMD: gunicorn with the project's config and worker class.
    assert "command" not in services["api"]
    command = dockerfile_command()
    assert (ROOT / command[command.index("--config") + 1]).exists()
    module, _, name = command[command.index("--worker-class") + 1].rpartition(".")
    assert hasattr(importlib.import_module(module), name)
    module, _, name = command[1].partition(":")
    assert name in vars(importlib.import_module(module))


def test_the_api_only_writes_messages_and_the_worker_delivers(services: dict[str, Any]) -> None:
    assert services["api"]["environment"]["OUTBOX_ENABLED"] == "false"
    assert "OUTBOX_ENABLED" not in services["worker"]["environment"]


def test_data_services_are_healthchecked_persistent_and_restarted(
    services: dict[str, Any],
) -> None:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("db", "redis"):
        service = services[name]
        assert service["healthcheck"]["test"]
        assert service["restart"] == "unless-stopped"
        volume = service["volumes"][0].split(":")[0]
        assert volume in document["volumes"]
    for name, service in services.items():
        if name != "migrate":
            assert service["restart"] == "unless-stopped", name


def test_the_worker_is_healthchecked_on_its_own_liveness(services: dict[str, Any]) -> None:
    check = " ".join(services["worker"]["healthcheck"]["test"])
    port = Settings.model_fields["worker_metrics_port"].default
    assert f"http://127.0.0.1:{port}/health" in check


def test_smtp_goes_to_mailpit_with_its_ui(services: dict[str, Any]) -> None:
    environment = services["api"]["environment"]
    assert environment["SMTP_HOST"] == "mailpit"
    assert "mailpit" in services["mailpit"]["image"]
    assert any(port.endswith(":8025") for port in services["mailpit"]["ports"])


def test_every_image_compose_pulls_is_pinned(services: dict[str, Any]) -> None:
    # The app services run the image `migrate` builds here; everything else is pulled, and
    # `latest` (or no tag) would change under a running deployment at the next pull.
    for name, service in services.items():
        if name in APP_SERVICES:
            continue
        repository, _, tag = service["image"].rpartition(":")
        assert repository, (name, service["image"])
        assert tag != "latest", name
        assert re.fullmatch(r"v?\d+(\.\d+)*(-[a-z]+)?", tag), (name, tag)


def published(port: str) -> tuple[str, str, str]:
    """A short-syntax port with Compose's defaults filled in: (address, host port, port)."""
    parts = with_compose_defaults(port).split(":")
    # Without an address Compose publishes on every interface.
    address = parts[0] if len(parts) == 3 else "0.0.0.0"  # noqa: S104 - what Compose does
    return address, parts[-2], parts[-1]


def test_only_nginx_is_published_beyond_this_machine(services: dict[str, Any]) -> None:
    operations = (ROOT / "docs/operations.md").read_text()
    ports = {name: service["ports"] for name, service in services.items() if "ports" in service}
    # Mailpit holds every reset link, Grafana lets anyone in as a viewer: loopback only.
    assert set(ports) == {"nginx", "mailpit", "jaeger", "prometheus", "grafana"}
    for name, specs in ports.items():
        for spec in specs:
            address, host_port, _ = published(spec)
            if name == "nginx":
                assert host_port == "8000"
            else:
                assert address == "127.0.0.1", (name, spec)
                # Where the operations guide sends operators to look.
                assert f"http://127.0.0.1:{host_port}" in operations, name


def test_stop_grace_outlasts_gunicorns_graceful_timeout(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        assert seconds(services[name]["stop_grace_period"]) > graceful_timeout()
    assert dockerfile_instructions("STOPSIGNAL") == ["SIGTERM"]


def test_only_nginx_is_published_and_it_hides_metrics(services: dict[str, Any]) -> None:
    assert "ports" not in services["api"]
    assert any(port.endswith(":8000") for port in services["nginx"]["ports"])
    mount = services["nginx"]["volumes"][0].split(":")
    assert (ROOT / mount[0]).resolve() == ROOT / "deploy/nginx/api.conf"
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", NGINX)
    assert "upstream api {" in NGINX
    assert re.search(r"server api:8000 max_fails=\d+ fail_timeout=\d+s;", NGINX)
    assert re.search(r"keepalive \d+;", NGINX)
    assert "proxy_http_version 1.1;" in NGINX
    assert 'proxy_set_header Connection "";' in NGINX
    # Overwritten with the peer's address, so a client cannot forge its way past a limit.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in NGINX


def test_nginx_streams_live_events_unbuffered_past_their_heartbeats() -> None:
    block = re.search(r"location = /api/v1/events \{(.*?)\}", NGINX, re.DOTALL)
    assert block
    assert "proxy_buffering off;" in block[1]
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", block[1])
    assert timeout
    seconds = int(timeout[1]) * {"s": 1, "m": 60, "h": 3600}[timeout[2]]
    assert seconds > 2 * Settings().events_heartbeat_seconds


def test_nginx_lets_the_service_answer_oversize_bodies() -> None:
    match = re.search(r"client_max_body_size (\d+)([km]);", NGINX)
    assert match
    nginx_limit = int(match[1]) * 1024 ** (2 if match[2] == "m" else 1)
    assert nginx_limit > Settings().max_request_body_bytes


def test_nginx_lets_the_service_answer_oversize_heads() -> None:
    match = re.search(r"large_client_header_buffers (\d+) (\d+)k;", NGINX)
    assert match
    count, size = int(match[1]), int(match[2]) * 1024
    settings = Settings()
    # One header line may take the whole limit; all of them and the request line, more.
    assert size > settings.max_request_header_bytes
    assert count * size > request_head_limit(settings)


def test_the_dockerfile_builds_from_the_lock_as_a_numeric_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 2
    runs = " ".join(dockerfile_instructions("RUN"))
    assert "--require-hashes" in runs
    assert "compileall" in runs
    assert dockerfile_instructions("USER") == ["10001:10001"]
    assert "--uid 10001" in runs
    assert "--gid 10001" in runs


def test_the_healthcheck_runs_a_file_the_image_holds() -> None:
    (healthcheck,) = dockerfile_instructions("HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[0] == "python"
    assert (ROOT / command[1]).exists()
    copies = " ".join(dockerfile_instructions("COPY"))
    assert command[1] in copies


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("*", "localhost"),
        ("api.example.com,other.example.com", "api.example.com"),
        ("*.example.com", "health.example.com"),
        (" , api.example.com", "api.example.com"),
    ],
)
def test_the_healthcheck_names_a_host_the_service_serves(allowed: str, host: str) -> None:
    assert host_header(allowed) == host


@pytest.mark.parametrize("allowed", ["api.example.com", "*.example.com", "*"])
def test_the_healthcheck_passes_against_gunicorn_whatever_allowed_hosts_is(
    tmp_path: Path, allowed: str
) -> None:
    env = environment(tmp_path, ALLOWED_HOSTS=allowed)
    with server(gunicorn_command, env) as served:
        # The host check is on: a request without a served Host is refused (but probes).
        plain = httpx.get(f"http://127.0.0.1:{served.port}/nothing", headers={"Host": "evil"})
        assert plain.status_code == (404 if allowed == "*" else 400)
        check = subprocess.run(
            [sys.executable, "deploy/healthcheck.py"],
            cwd=ROOT,
            env=env | {"HEALTHCHECK_PORT": str(served.port)},
            check=False,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr


async def test_the_probed_paths_are_served(client: httpx.AsyncClient) -> None:
    for path in PROBED_PATHS:
        assert (await client.get(replica_url(client, path))).status_code == 200, path
    assert 'f"http://127.0.0.1:{PORT}/health"' in (ROOT / "deploy/healthcheck.py").read_text()


def test_every_setting_in_compose_is_real(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert set(services[name]["environment"]) <= setting_names(), name


def test_prometheus_scrapes_every_replica_and_worker_directly(services: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["api"]["dns_sd_configs"][0]
    assert api["names"] == ["api"]
    assert api["port"] == 8000
    worker = jobs["worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"]
    assert worker["port"] == Settings.model_fields["worker_metrics_port"].default
    observability = {
        name for name, service in services.items() if "observability" in service.get("profiles", ())
    }
    assert observability == {"collector", "jaeger", "prometheus", "grafana"}


def test_the_replica_profile_streams_from_db(services: dict[str, Any]) -> None:
    replica = services["db-replica"]
    assert replica["profiles"] == ["replica"]
    assert replica["image"] == services["db"]["image"]
    assert "pg_basebackup -h db" in replica["command"][-1]
    assert replica["depends_on"]["db"]["condition"] == "service_healthy"
    script = services["db"]["volumes"][1].split(":")[0]
    assert "host replication" in (ROOT / script).read_text()


def exported_names(scrape: str) -> set[str]:
    """Every sample name a scrape and the metrics module's collectors can produce."""
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", scrape, re.MULTILINE))
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            # No public accessor for the declared name and type of a collector.
            base, kind = collector._name, str(collector._type)
            names |= {base + suffix for suffix in suffixes.get(kind, ("",))}
    return names


def metric_names(expression: str) -> set[str]:
    """The metrics a PromQL expression reads: its names, less functions, labels, ranges."""
    expression = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expression)
    expression = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expression)
    expression = re.sub(r"\b(offset\s+\d+[smhdwy]|and|or|unless)\b", "", expression)
    return {
        name
        for name in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expression)
        if not name.isdigit()
    }


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/service.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= metric_names(target["expr"])
    return names


async def test_the_dashboard_queries_metrics_the_service_exports(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/health", "/api/v1/items", "/api/v1/items/999999", "/nowhere"):
        await client.get(path)
    scrape = (await client.get(replica_url(client, "/metrics"))).text
    names = dashboard_metric_names()
    assert {"http_requests_total", "http_request_duration_seconds_bucket"} <= names
    assert {
        "cache_hits_total",
        "rate_limit_rejections_total",
        "outbox_messages_dead_total",
        "outbox_messages_pending",
    } <= names
    assert names <= exported_names(scrape), names - exported_names(scrape)
    # The request metrics are in this very scrape, not only declared.
    assert "http_requests_total{" in scrape
    assert "http_request_duration_seconds_bucket{" in scrape
