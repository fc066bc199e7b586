"""The Kubernetes manifests (deploy/k8s), checked without a cluster.

The kustomization is rendered here (its resources, common labels and image override: the
only Kustomize features it uses, and the renderer refuses any other), every object is
validated against the Kubernetes OpenAPI schemas that ``kubernetes-validate`` ships (strict:
an unknown or misspelt field is an error; no network needed), and then the wiring is
checked: the CLI commands, one image, probes, resources, the non-root security context, the
worker autoscaler, and configuration from a ConfigMap and a Secret that is never committed
with values.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.settings import AppEnv, Settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
KUBERNETES_VERSION = "1.31"  # the oldest minor version still supported upstream when written
SECRET_NAME = "onboarding-secrets"
CONFIG_NAME = "onboarding-config"
COMMANDS = {"onboarding-api": "api", "onboarding-worker": "worker", "onboarding-migrate": "migrate"}
IMAGE_UID = 10001  # the Dockerfile's `USER 10001:10001`

SETTINGS_ENV = frozenset(name.upper() for name in Settings.model_fields)
TEMPORAL_ENVCONFIG = frozenset(
    {
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
    }
)
SECRET_KEYS = frozenset(
    {"DATABASE_URL", "API_KEYS", "CONSOLE_USERS", "SESSION_SECRET", "PORTAL_SECRET"}
    | {"WEBHOOK_SECRET", "INBOUND_EMAIL_TOKEN", "INBOUND_EMAIL_PASSWORD", "PAYLOAD_KEYS"}
    | {"SENDGRID_API_KEY", "TWILIO_AUTH_TOKEN", "TEMPORAL_API_KEY", "METRICS_TOKEN"}
)


# --- rendering -------------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    data = yaml.safe_load(KUSTOMIZATION.read_text())
    assert data["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert data["kind"] == "Kustomization"
    return data


def render(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``kustomize build deploy/k8s`` prints, for the features this kustomization uses."""
    supported = {"apiVersion", "kind", "labels", "resources", "images"}
    unsupported = set(kustomization) - supported
    assert not unsupported, f"render() does not implement {sorted(unsupported)}: extend it"
    objects = [doc for name in kustomization["resources"] for doc in documents(K8S / name)]
    for entry in kustomization.get("labels") or []:
        assert set(entry) <= {"pairs", "includeSelectors"}, entry
        assert not entry.get("includeSelectors"), "selectors are immutable: keep them out"
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    overrides = {i["name"]: i for i in kustomization.get("images") or []}
    for obj in objects:
        for container in containers(obj):
            name, _, tag = container["image"].partition(":")
            if name in overrides:
                new = overrides[name]
                container["image"] = f"{new.get('newName', name)}:{new.get('newTag', tag)}"
    return objects


@pytest.fixture(scope="module")
def rendered(kustomization) -> list[dict[str, Any]]:
    return render(copy.deepcopy(kustomization))


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec["containers"]]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if pod_spec(o) is not None}


# --- the kustomization -----------------------------------------------------------------


def test_every_resource_of_the_kustomization_exists(kustomization):
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), f"kustomization.yaml lists {name}, which is missing"
    assert len(set(kustomization["resources"])) == len(kustomization["resources"])


def test_every_manifest_is_in_the_kustomization_but_the_secret_example(kustomization):
    files = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name}
    assert SECRET_EXAMPLE.name in files
    assert set(kustomization["resources"]) == files - {SECRET_EXAMPLE.name}


def test_no_secret_is_committed(rendered):
    # the Secret is made per environment from secret.example.yaml, never applied from here
    assert not [o for o in rendered if o["kind"] == "Secret"]
    example = documents(SECRET_EXAMPLE)
    assert {o["metadata"]["name"] for o in example} >= {SECRET_NAME}
    for obj in example:
        for key, value in (obj.get("stringData") or {}).items():
            assert "CHANGE-ME" in str(value), f"{key} in {SECRET_EXAMPLE.name} is not a placeholder"
        assert not obj.get("data"), "example values go in stringData, as placeholders"


# --- schema validation -------------------------------------------------------------------


def all_manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path != KUSTOMIZATION
        for doc in documents(path)
    ]


@pytest.mark.parametrize(("name", "manifest"), all_manifests(), ids=lambda v: str(v)[:60])
def test_every_manifest_validates_against_the_kubernetes_schema(name, manifest):
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_rendered_objects_validate_as_well(rendered):
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validator_catches_a_misspelt_field():
    deployment = find(documents(K8S / "api.yaml"), "Deployment", "onboarding-api")
    broken = copy.deepcopy(deployment)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbes"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- the workloads -----------------------------------------------------------------------


def test_the_api_worker_and_migrate_run_the_cli(rendered):
    found = workloads(rendered)
    assert set(found) == set(COMMANDS), sorted(found)
    assert found["onboarding-migrate"]["kind"] == "Job"
    for name, cli_command in COMMANDS.items():
        (container,) = containers(found[name])
        argv = [*container.get("command", []), *container.get("args", [])]
        assert argv == ["onboarding", cli_command], (name, argv)


def test_one_image_for_every_process(rendered, kustomization):
    images = {c["image"] for obj in workloads(rendered).values() for c in containers(obj)}
    assert len(images) == 1, images
    (override,) = kustomization["images"]
    assert images == {f"{override['newName']}:{override['newTag']}"}
    assert override["newTag"] not in {"", "latest"}


def test_every_container_has_requests_and_limits(rendered):
    for name, obj in workloads(rendered).items():
        for container in containers(obj):
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind) or {}), (name, kind)


def test_api_probes(rendered):
    api = find(rendered, "Deployment", "onboarding-api")
    (container,) = containers(api)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert ports["http"] == int(env["API_PORT"]) == 8000
    assert env["API_HOST"] == "0.0.0.0"  # noqa: S104 - beyond the Pod's loopback
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": None}
    for probe, path in expected.items():
        check = container[probe]["httpGet"]
        assert check["port"] in ports, (probe, check)
        if path:
            assert check["path"] == path, probe


def compose_worker_probe() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return list(test[1:])


def test_worker_probes_are_the_compose_health_check(rendered):
    """The worker serves no HTTP: its probes check the connection to Temporal, with the
    same command as docker-compose.yml (tests/test_docker_compose.py runs that command)."""
    worker = find(rendered, "Deployment", "onboarding-worker")
    (container,) = containers(worker)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == compose_worker_probe(), probe
    # a worker cut off for a moment is not restarted: liveness gives it minutes
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_worker_metrics_port_is_the_one_the_worker_binds(rendered):
    worker = find(rendered, "Deployment", "onboarding-worker")
    (container,) = containers(worker)
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    port = int(env["WORKER_METRICS_ADDRESS"].rsplit(":", 1)[1])
    assert {"name": "metrics", "containerPort": port} in container["ports"]
    annotations = worker["spec"]["template"]["metadata"].get("annotations") or {}
    assert annotations.get("prometheus.io/port") == str(port)


def test_hpa_scales_the_worker_deployment(rendered):
    (hpa,) = [o for o in rendered if o["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "onboarding-worker",
    )
    find(rendered, "Deployment", "onboarding-worker")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["metrics"]
    # the autoscaler owns the replica count: a fixed one would fight it on every apply
    assert "replicas" not in find(rendered, "Deployment", "onboarding-worker")["spec"]


def test_selectors_match_their_pods(rendered):
    pods = {
        name: obj["spec"]["template"]["metadata"]["labels"]
        for name, obj in workloads(rendered).items()
    }
    for obj in rendered:
        selector = obj["spec"].get("selector") if "spec" in obj else None
        if not selector:
            continue
        labels = selector.get("matchLabels", selector)
        matched = [n for n, pod in pods.items() if labels.items() <= pod.items()]
        if obj["kind"] == "Deployment":
            assert matched == [obj["metadata"]["name"]], (obj["metadata"]["name"], matched)
        else:
            assert matched, f"{obj['kind']}/{obj['metadata']['name']} selects no Pod"
    service = find(rendered, "Service", "onboarding-api")
    (api,) = containers(find(rendered, "Deployment", "onboarding-api"))
    port_names = {p["name"] for p in api["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


# --- configuration: a ConfigMap and a Secret ---------------------------------------------


def test_configuration_comes_from_the_configmap_and_the_secret(rendered):
    for name, obj in workloads(rendered).items():
        for container in containers(obj):
            sources = container.get("envFrom") or []
            secrets = [s["secretRef"]["name"] for s in sources if "secretRef" in s]
            configs = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
            assert secrets == [SECRET_NAME], (name, sources)
            assert configs == [CONFIG_NAME], (name, sources)
            for var in container.get("env") or []:
                assert var["name"] not in SECRET_KEYS, f"{name} sets {var['name']} in clear"
                assert var["name"] in SETTINGS_ENV, f"{name} sets unknown {var['name']}"
    find(rendered, "ConfigMap", CONFIG_NAME)


def test_the_configmap_holds_settings_and_no_secret(rendered):
    data = find(rendered, "ConfigMap", CONFIG_NAME)["data"]
    unknown = sorted(set(data) - SETTINGS_ENV - TEMPORAL_ENVCONFIG)
    assert not unknown, f"the ConfigMap sets variables nothing reads: {unknown}"
    assert not set(data) & SECRET_KEYS, sorted(set(data) & SECRET_KEYS)
    assert data["APP_ENV"] == "production"
    # any of these, even empty, switches the client to TLS: only when it is wanted
    assert not set(data) & TEMPORAL_ENVCONFIG


def test_configmap_and_secret_example_make_a_production_configuration(rendered, monkeypatch):
    """The ConfigMap plus the Secret's keys are everything APP_ENV=production asks for: with
    the example's values filled in, Settings accepts them (and so every process starts)."""
    (secret,) = [o for o in documents(SECRET_EXAMPLE) if o["metadata"]["name"] == SECRET_NAME]
    unknown = sorted(set(secret["stringData"]) - SETTINGS_ENV - TEMPORAL_ENVCONFIG)
    assert not unknown, unknown
    required = set(Settings(_env_file=None).dev_defaults_in_use())
    assert required <= set(secret["stringData"]), sorted(required - set(secret["stringData"]))
    for key, value in {
        **find(rendered, "ConfigMap", CONFIG_NAME)["data"],
        **secret["stringData"],
    }.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings(_env_file=None)
    assert settings.app_env is AppEnv.PRODUCTION
    assert settings.dev_defaults_in_use() == []


def test_temporal_client_certificates_are_optional(rendered):
    for name in ("onboarding-api", "onboarding-worker"):
        spec = pod_spec(find(rendered, "Deployment", name))
        assert spec is not None
        (volume,) = [v for v in spec["volumes"] if "secret" in v]
        assert volume["secret"]["optional"] is True, name
        (container,) = spec["containers"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
        assert mount["readOnly"] is True


# --- security and storage ----------------------------------------------------------------


def test_pods_run_as_the_images_non_root_user(rendered):
    for name, obj in workloads(rendered).items():
        spec = pod_spec(obj)
        assert spec is not None
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == pod["runAsGroup"] == IMAGE_UID, name
        assert pod["fsGroup"] == IMAGE_UID, name  # volumes writable by that group
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        # a Service named like a setting (`api` -> API_PORT) must not leak into the env
        assert spec["enableServiceLinks"] is False, name
        for container in containers(obj):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            # the read-only root leaves /tmp to a scratch volume
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp, f"{name} has no writable /tmp"
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[tmp[0]["name"]], name


def test_api_and_worker_share_the_uploads_volume(rendered):
    blob_dir = find(rendered, "ConfigMap", CONFIG_NAME)["data"]["BLOB_DIR"]
    claims = set()
    for name in ("onboarding-api", "onboarding-worker"):
        spec = pod_spec(find(rendered, "Deployment", name))
        assert spec is not None
        (container,) = spec["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == blob_dir]
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        claims.add(volume["persistentVolumeClaim"]["claimName"])
    assert len(claims) == 1, claims
    claim = find(rendered, "PersistentVolumeClaim", claims.pop())
    # several Pods, possibly on several nodes, write and read it
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_migrate_job_runs_once_per_release(rendered):
    job = find(rendered, "Job", "onboarding-migrate")
    spec = pod_spec(job)
    assert spec is not None
    assert spec["restartPolicy"] in {"Never", "OnFailure"}
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"].get("ttlSecondsAfterFinished"), "a finished Job blocks the next release"
