"""The Kubernetes manifests (deploy/k8s/), checked offline: against the Kubernetes schemas when
kubernetes-validate is installed (the `dev` extra), and always against the app they deploy."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.core.config import Settings
from support.deployment import dockerfile_command, dockerfile_instructions, setting_names
from support.processes import ROOT

K8S = ROOT / "deploy/k8s"
KUBERNETES_VERSION = "1.31.0"


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            for document in documents(path):
                yield path, document


BASE = {
    document["metadata"]["name"] + "/" + document["kind"]: document
    for path, document in manifests()
    if "base" in path.parts
}


def resource(kind: str, name: str) -> dict[str, Any]:
    return BASE[f"{name}/{kind}"]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for key, document in BASE.items():
        if document["kind"] in ("Deployment", "Job"):
            yield key, document["spec"]["template"]["spec"]


def test_every_kustomization_lists_files_that_exist() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        listed = documents(kustomization)[0]
        for entry in listed.get("resources", []):
            assert (kustomization.parent / entry).exists(), (kustomization, entry)
        for patch in listed.get("patches", []):
            assert (kustomization.parent / patch["path"]).exists(), (kustomization, patch)
    base = documents(K8S / "base/kustomization.yaml")[0]
    listed_files = {K8S / "base" / entry for entry in base["resources"]}
    assert listed_files == set((K8S / "base").glob("*.yaml")) - {K8S / "base/kustomization.yaml"}


def test_every_manifest_matches_the_kubernetes_schema() -> None:
    validator = pytest.importorskip(
        "kubernetes_validate", reason="needs kubernetes-validate (pip install '.[dev]')"
    )
    for path, document in manifests():
        # An overlay's patch is a fragment, only complete once merged into the base.
        if "overlays" in path.parts:
            continue
        validator.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kinds_a_production_deployment_needs_are_there() -> None:
    kinds = set(BASE)
    assert {
        "api/Deployment",
        "worker/Deployment",
        "api/Service",
        "api/Ingress",
        "api/HorizontalPodAutoscaler",
        "api/PodDisruptionBudget",
        "migrate/Job",
        "api-config/ConfigMap",
        "api-secrets/Secret",
        "api/NetworkPolicy",
    } <= kinds


def test_pods_run_as_the_images_numeric_user_on_a_read_only_root() -> None:
    (user,) = dockerfile_instructions("USER")
    uid, _, gid = user.partition(":")
    for key, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, key
        assert str(spec["securityContext"]["runAsUser"]) == uid, key
        assert str(spec["securityContext"]["runAsGroup"]) == gid, key
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, key
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, key
            assert container["resources"]["requests"], key
        mounts = {
            mount["mountPath"] for c in spec["containers"] for mount in c.get("volumeMounts", [])
        }
        if key != "migrate/Job":
            # gunicorn's heartbeat files and the metrics directory, on a read-only root.
            assert "/tmp" in mounts, key  # noqa: S108 - a mount path, not a file made here


def test_every_variable_the_manifests_set_is_a_setting() -> None:
    settings = setting_names()
    assert set(resource("ConfigMap", "api-config")["data"]) <= settings
    assert set(resource("Secret", "api-secrets")["stringData"]) <= settings
    for key, spec in pod_specs():
        for container in spec["containers"]:
            assert {variable["name"] for variable in container.get("env", [])} <= settings, key


def test_the_api_runs_one_process_per_pod_and_drains_before_it_stops() -> None:
    assert resource("ConfigMap", "api-config")["data"]["WEB_CONCURRENCY"] == "1"
    spec = resource("Deployment", "api")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    command = dockerfile_command()
    graceful = int(command[command.index("--graceful-timeout") + 1])
    assert spec["terminationGracePeriodSeconds"] > int(sleep[1]) + graceful


def probes() -> Iterator[tuple[str, dict[str, Any]]]:
    (container,) = resource("Deployment", "api")["spec"]["template"]["spec"]["containers"]
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        yield kind, container[kind]


async def test_the_probes_ask_for_served_paths_with_an_allowed_host(
    client: httpx.AsyncClient,
) -> None:
    probed = dict(probes())
    assert probed["livenessProbe"]["httpGet"]["path"] == "/health"
    assert probed["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    allowed = Settings(
        allowed_hosts=resource("ConfigMap", "api-config")["data"]["ALLOWED_HOSTS"]
    ).allowed_hosts
    for kind, probe in probed.items():
        headers = {header["name"]: header["value"] for header in probe["httpGet"]["httpHeaders"]}
        assert headers["Host"] in allowed, kind
        assert (await client.get(probe["httpGet"]["path"])).status_code == 200, kind


def test_the_scaled_objects_point_at_the_api() -> None:
    hpa = resource("HorizontalPodAutoscaler", "api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    labels = resource("Deployment", "api")["spec"]["template"]["metadata"]["labels"]
    for selector in (
        resource("PodDisruptionBudget", "api")["spec"]["selector"]["matchLabels"],
        resource("Service", "api")["spec"]["selector"],
        resource("NetworkPolicy", "api")["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    backend = resource("Ingress", "api")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "api"


def test_the_ingress_lets_the_service_answer_oversize_bodies() -> None:
    annotations = resource("Ingress", "api")["metadata"]["annotations"]
    size = re.fullmatch(r"(\d+)m", annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert size
    assert int(size[1]) * 1024 * 1024 > Settings().max_request_body_bytes
    assert (
        "location = /metrics { return 404; }"
        in (annotations["nginx.ingress.kubernetes.io/server-snippet"])
    )


def test_the_worker_is_probed_on_its_liveness_path_and_port() -> None:
    (worker,) = resource("Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    probe = worker["livenessProbe"]["httpGet"]
    assert probe["path"] == "/health"
    (port,) = [p for p in worker["ports"] if p["name"] == probe["port"]]
    environment = {variable["name"]: variable["value"] for variable in worker["env"]}
    assert str(port["containerPort"]) == environment["WORKER_METRICS_PORT"]


def test_the_migration_job_and_the_worker_run_the_composes_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    (migrate,) = resource("Job", "migrate")["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == compose["migrate"]["command"]
    (worker,) = resource("Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    assert worker["command"] == compose["worker"]["command"]
