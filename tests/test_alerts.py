"""The alert rules shipped for Prometheus (deploy/prometheus/alerts.yml): valid, loaded by
the shipped configuration, reading only metrics and routes the service has, and each firing
on what it is for and not on its look-alikes (`promtool test rules` with
tests/prometheus/alerts_test.yml). promtool comes with Debian's prometheus package."""

import re
import shutil
import subprocess
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import iter_route_contexts

from app.core.config import Settings
from app.main import create_app
from support.processes import ROOT
from tests.test_deploy_files import exported_names, metric_names
from tests.transport import replica_url

RULES = ROOT / "deploy/prometheus/alerts.yml"
RULE_TESTS = ROOT / "tests/prometheus/alerts_test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="needs promtool (apt-get install prometheus)"
)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool(*arguments: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(  # noqa: S603 - promtool on the repository's own files
        [PROMTOOL, *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_the_shipped_configuration_loads_valid_rules() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    # Compose mounts the rules beside the configuration, where rule_files resolves them.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    assert f"SUCCESS: {len(alert_rules())} rules found" in promtool("check", "rules", str(RULES))
    assert "alerts.yml" in promtool("check", "config", "deploy/prometheus/prometheus.yml")


@needs_promtool
def test_each_alert_fires_on_what_it_is_for_and_not_on_its_look_alikes() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in cases for case in test["alert_rule_test"]}
    assert tested == {rule["alert"] for rule in alert_rules()}
    assert "SUCCESS" in promtool("test", "rules", str(RULE_TESTS))


async def test_the_alerts_read_metrics_and_routes_the_service_has(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/health")
    scrape = (await client.get(replica_url(client, "/metrics"))).text
    app = create_app(Settings(_env_file=None))
    routes = {context.path_format for context in iter_route_contexts(app.routes)}
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {"JobLogMessagesDead", "ServiceErrorRateHigh", "ServiceNotReady"} <= alerts
    for rule in alert_rules():
        # `up` is Prometheus' own: whether it could scrape the target at all.
        names = metric_names(rule["expr"]) - {"up"}
        assert names <= exported_names(scrape), (rule["alert"], names - exported_names(scrape))
        for route in re.findall(r'route="([^"]+)"', rule["expr"]):
            assert route in routes, (rule["alert"], route)
