"""The Kubernetes manifests (deploy/k8s/), checked offline: against the Kubernetes schemas when
kubernetes-validate is installed (the `dev` extra), as `kubectl kustomize` renders them when
kubectl is installed, and always against the app they deploy."""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import iter_route_contexts

from app.core.config import Settings
from app.main import create_app
from support.deployment import dockerfile_command, dockerfile_instructions, setting_names
from support.processes import ROOT

K8S = ROOT / "deploy/k8s"
KUBERNETES_VERSION = "1.31.0"
OVERLAY = K8S / "overlays/production"
SECRET_EXAMPLE = K8S / "base/secret.example.yaml"


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def kustomization(directory: Path) -> dict[str, Any]:
    return documents(directory / "kustomization.yaml")[0]


def resources(directory: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """What `kubectl apply -k directory` applies, before patches: its resources' documents,
    those of the kustomizations it builds on included."""
    for entry in kustomization(directory).get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            yield from resources(path)
        else:
            for document in documents(path):
                yield path, document


def patches(directory: Path) -> Iterator[dict[str, Any]]:
    for patch in kustomization(directory).get("patches", []):
        yield from documents(directory / patch["path"])


BASE = {
    document["metadata"]["name"] + "/" + document["kind"]: document
    for _, document in resources(K8S / "base")
}


def resource(kind: str, name: str) -> dict[str, Any]:
    return BASE[f"{name}/{kind}"]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for key, document in BASE.items():
        if document["kind"] == "Deployment":
            yield key, document["spec"]["template"]["spec"]
        elif document["kind"] == "CronJob":
            yield key, document["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_kustomization_lists_files_that_exist() -> None:
    for path in K8S.rglob("kustomization.yaml"):
        listed = kustomization(path.parent)
        for entry in listed.get("resources", []):
            assert (path.parent / entry).exists(), (path, entry)
        for patch in listed.get("patches", []):
            assert (path.parent / patch["path"]).exists(), (path, patch)
    applied = {path for path, _ in resources(K8S / "base")}
    manifests = set((K8S / "base").glob("*.yaml")) - {K8S / "base/kustomization.yaml"}
    # Every manifest of the base is applied, but the example of the Secret it leaves out.
    assert applied == manifests - {SECRET_EXAMPLE}


def test_every_manifest_matches_the_kubernetes_schema() -> None:
    validator = pytest.importorskip(
        "kubernetes_validate", reason="needs kubernetes-validate (pip install '.[dev]')"
    )
    # A patch is a fragment, only complete once merged into the base.
    fragments = {
        (directory.parent / patch["path"]).resolve()
        for directory in K8S.rglob("kustomization.yaml")
        for patch in kustomization(directory.parent).get("patches", [])
    }
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml" and path.resolve() not in fragments:
            for document in documents(path):
                validator.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_kinds_a_production_deployment_needs_are_there() -> None:
    assert {
        "api/Deployment",
        "worker/Deployment",
        "api/Service",
        "api/Ingress",
        "api/HorizontalPodAutoscaler",
        "api/PodDisruptionBudget",
        "migrate/CronJob",
        "api-config/ConfigMap",
        "api/NetworkPolicy",
    } <= set(BASE)


def test_no_kustomization_applies_a_secret() -> None:
    # Applied, an example would replace the real Secret with its values at every apply.
    for path in K8S.rglob("kustomization.yaml"):
        applied = [document["kind"] for _, document in resources(path.parent)]
        assert "Secret" not in applied, path
        assert "secretGenerator" not in kustomization(path.parent), path
    assert [document["kind"] for document in documents(SECRET_EXAMPLE)] == ["Secret"]


def test_each_overlay_creates_its_namespace() -> None:
    for path in (K8S / "overlays").rglob("kustomization.yaml"):
        namespace = kustomization(path.parent)["namespace"]
        created = [
            document["metadata"]["name"]
            for _, document in resources(path.parent)
            if document["kind"] == "Namespace"
        ]
        assert created == [namespace], path


def test_no_replicas_where_an_autoscaler_owns_the_count() -> None:
    overlays = [path.parent for path in (K8S / "overlays").rglob("kustomization.yaml")]
    scaled = {
        document["spec"]["scaleTargetRef"]["name"]
        for document in BASE.values()
        if document["kind"] == "HorizontalPodAutoscaler"
    }
    assert scaled == {"api"}
    # Neither the base nor a patch may set one: every apply would reset the autoscaler's.
    deployments = [*BASE.values(), *(patch for overlay in overlays for patch in patches(overlay))]
    for document in deployments:
        if document["kind"] == "Deployment" and document["metadata"]["name"] in scaled:
            assert "replicas" not in document["spec"], document["metadata"]["name"]


def test_pods_run_as_the_images_numeric_user_on_a_read_only_root() -> None:
    (user,) = dockerfile_instructions("USER")
    uid, _, gid = user.partition(":")
    for key, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, key
        assert str(spec["securityContext"]["runAsUser"]) == uid, key
        assert str(spec["securityContext"]["runAsGroup"]) == gid, key
        for container in containers(spec):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, key
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, key
            assert container["resources"]["requests"], key
        mounts = {
            mount["mountPath"] for c in spec["containers"] for mount in c.get("volumeMounts", [])
        }
        if key != "migrate/CronJob":
            # gunicorn's heartbeat files and the metrics directory, on a read-only root.
            assert "/tmp" in mounts, key  # noqa: S108 - a mount path, not a file made here


def test_every_variable_the_manifests_set_is_a_setting() -> None:
    settings = setting_names()
    assert set(resource("ConfigMap", "api-config")["data"]) <= settings
    (secret,) = documents(SECRET_EXAMPLE)
    assert set(secret["stringData"]) <= settings
    for key, spec in pod_specs():
        for container in containers(spec):
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
    for path in resource("Ingress", "api")["spec"]["rules"][0]["http"]["paths"]:
        assert path["backend"]["service"] == {"name": "api", "port": {"name": "http"}}


def test_the_ingress_lets_the_service_answer_oversize_bodies() -> None:
    annotations = resource("Ingress", "api")["metadata"]["annotations"]
    size = re.fullmatch(r"(\d+)m", annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert size
    assert int(size[1]) * 1024 * 1024 > Settings().max_request_body_bytes


def routed(path: str) -> bool:
    """Whether the Ingress sends `path` to the service (Kubernetes' path matching)."""
    for rule in resource("Ingress", "api")["spec"]["rules"][0]["http"]["paths"]:
        prefix = rule["path"].rstrip("/")
        if rule["pathType"] == "Exact" and path == rule["path"]:
            return True
        if rule["pathType"] == "Prefix" and (path == prefix or path.startswith(prefix + "/")):
            return True
    return False


def test_the_ingress_routes_every_public_path_and_never_metrics() -> None:
    annotations = resource("Ingress", "api")["metadata"]["annotations"]
    # ingress-nginx refuses configuration snippets by default (and may ignore them).
    assert not [name for name in annotations if "snippet" in name]
    app = create_app(Settings(_env_file=None, docs_enabled=True))
    paths = {
        context.path_format
        for context in iter_route_contexts(app.routes)
        if isinstance(context.path_format, str)
    }
    assert "/metrics" in paths
    assert not routed("/metrics")
    assert not routed("/metrics/")
    for path in paths - {"/metrics"}:
        assert routed(path), path


def test_the_migration_runs_by_its_own_step_and_new_pods_wait_for_it() -> None:
    # A Job applied with the rest fails the next release's apply (its template is
    # immutable) and starts alongside the new pods; the CronJob is only its template.
    assert not [key for key, document in BASE.items() if document["kind"] == "Job"]
    migrate = resource("CronJob", "migrate")["spec"]
    assert migrate["suspend"] is True
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    (job,) = migrate["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert job["command"] == compose["migrate"]["command"]
    copied = " ".join(dockerfile_instructions("COPY"))
    for name in ("api", "worker"):
        spec = resource("Deployment", name)["spec"]["template"]["spec"]
        (wait,) = spec["initContainers"]
        assert wait["image"] == spec["containers"][0]["image"] == job["image"]
        assert wait["command"][:2] == ["python", "-m"]
        module = wait["command"][2]
        assert (ROOT / (module.replace(".", "/") + ".py")).exists()
        assert module.replace(".", "/") + ".py" in copied


def test_the_worker_is_probed_on_its_liveness_path_and_port() -> None:
    (worker,) = resource("Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    probe = worker["livenessProbe"]["httpGet"]
    assert probe["path"] == "/health"
    (port,) = [p for p in worker["ports"] if p["name"] == probe["port"]]
    environment = {variable["name"]: variable["value"] for variable in worker["env"]}
    assert str(port["containerPort"]) == environment["WORKER_METRICS_PORT"]


def test_the_worker_runs_the_composes_command() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    (worker,) = resource("Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    assert worker["command"] == compose["worker"]["command"]


def kubernetes_section() -> str:
    operations = (ROOT / "docs/operations.md").read_text()
    return operations.split("## Deploying on Kubernetes", 1)[1].split("\n## ", 1)[0]


def test_the_documented_kubernetes_commands_name_what_the_manifests_hold() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", kubernetes_section(), re.DOTALL)
    lines = [line.split("#")[0] for block in blocks for line in block.splitlines()]
    for path in re.findall(r"(?<!\S)(deploy/\S+)", "\n".join(lines)):
        assert (ROOT / path).exists(), path
    commands = [line for line in lines if line.startswith("kubectl")]
    assert commands
    namespace = kustomization(OVERLAY)["namespace"]
    names = {
        f"{document['kind'].lower()}/{document['metadata']['name']}"
        for _, document in resources(OVERLAY)
    }
    for command in commands:
        for flag, value in re.findall(r"(?<!\S)(-n|--from=)\s?(\S+)", command):
            assert value == namespace if flag == "-n" else value in names, command
        for reference in re.findall(r"\b((?:deployment|cronjob)/[a-z-]+)", command):
            assert reference in names, command
    # The release's order: apply (new pods wait), then the migration, waited for.
    text = "\n".join(commands)
    assert text.index("apply -k") < text.index("--from=cronjob/migrate") < text.index("wait")


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    """The production overlay as `kubectl kustomize` builds it, by name/kind."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("needs kubectl (its kustomize renders the overlays)")
    output = subprocess.run(  # noqa: S603 - kubectl on the repository's own files
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, check=True
    ).stdout
    return {
        f"{document['metadata']['name']}/{document['kind']}": document
        for document in yaml.safe_load_all(output)
        if document
    }


def test_the_rendered_overlay_is_what_an_apply_can_repeat(
    rendered: dict[str, dict[str, Any]],
) -> None:
    namespace = kustomization(OVERLAY)["namespace"]
    assert rendered[f"{namespace}/Namespace"]
    kinds = {key.split("/")[1] for key in rendered}
    assert not kinds & {"Secret", "Job"}
    api = rendered["api/Deployment"]
    assert "replicas" not in api["spec"]
    assert rendered["api/HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    image = api["spec"]["template"]["spec"]["containers"][0]["image"]
    assert not image.endswith(":latest")
    assert api["spec"]["template"]["spec"]["initContainers"][0]["image"] == image
    job = rendered["migrate/CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["image"] == image
