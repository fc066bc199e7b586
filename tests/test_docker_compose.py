"""The container packaging, checked without Docker.

Docker cannot run everywhere the tests run, so these tests parse ``docker-compose.yml``,
the ``Dockerfile`` and ``.dockerignore`` and assert the wiring a user relies on when they
type ``docker compose up``: start-up order, health checks, one shared environment, the
official images, published ports, a non-root image that runs the ``onboarding`` CLI.
If a ``docker compose`` client is installed, ``docker compose config`` validates the file
against the real Compose schema as well (no daemon needed); otherwise that test skips.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

APP_SERVICES = ("migrate", "worker", "api")
ALL_SERVICES = ("postgres", "temporal", "temporal-ui", *APP_SERVICES)
SCALE = "scale"  # `docker compose --profile scale`: two workers, two APIs, one balancer
BALANCER = "api-lb"

# Every environment variable the compose file (or the image) may set for the app. Each one
# must be read by the app or by temporalio.envconfig, and be described in
# docs/deployment.md. Adding a variable to the compose file means adding it here and there.
DOCUMENTED_APP_ENV = frozenset(
    {
        "DATABASE_URL",
        "DATA_DIR",
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_TASK_QUEUE",
        "TEMPORAL_UI_URL",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
        "API_HOST",
        "API_PORT",
        "API_KEYS",
        "PLAYBOOK_PATH",
        "BLOB_DIR",
        "SENDGRID_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    }
)
# Image plumbing, not app configuration.
IMAGE_ONLY_ENV = frozenset(
    {"PATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    | {"PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR"}
)
ROLES = {"client_app", "case_manager", "operator"}


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
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


# --- the stack -------------------------------------------------------------------------


def test_all_services_exist(compose):
    assert set(ALL_SERVICES) <= set(compose["services"]), sorted(compose["services"])


def test_images_are_the_official_ones_and_pinned(compose):
    expected = {
        "postgres": "postgres:",
        "temporal": "temporalio/auto-setup:",
        "temporal-ui": "temporalio/ui:",
    }
    for name, prefix in expected.items():
        image = service(compose, name)["image"]
        assert image.startswith(prefix), f"{name} uses {image!r}, expected {prefix}<tag>"
        tag = image.removeprefix(prefix)
        assert tag, f"{name} image must be pinned, got {image!r}"
        assert tag != "latest", f"{name} image must be pinned, got {image!r}"
    temporal_tag = service(compose, "temporal")["image"].removeprefix("temporalio/auto-setup:")
    assert re.fullmatch(r"1\.(2|3)\d(\.\d+)?", temporal_tag), temporal_tag


def test_infrastructure_and_api_have_healthchecks(compose):
    for name in ("postgres", "temporal", "api"):
        assert has_healthcheck(service(compose, name)), f"{name} needs a healthcheck"
    assert "pg_isready" in healthcheck_text(service(compose, "postgres"))
    temporal_check = healthcheck_text(service(compose, "temporal"))
    assert "temporal operator" in temporal_check or "tctl" in temporal_check
    # The server listens on the container address, not loopback: the check must say where.
    assert "temporal:7233" in temporal_check, temporal_check
    assert "/healthz" in healthcheck_text(service(compose, "api"))


def test_processes_without_http_do_not_inherit_the_image_healthcheck(compose):
    # The Dockerfile's HEALTHCHECK probes /healthz, which only the API serves.
    for name in ("worker", "migrate"):
        check = service(compose, name).get("healthcheck") or {}
        assert check.get("disable") is True or "/healthz" not in str(check.get("test", "")), (
            f"{name} would be reported unhealthy by the image's /healthz check"
        )
        assert check.get("disable") is True or check.get("test"), name


def test_start_up_order(compose):
    assert depends_on(service(compose, "temporal")).get("postgres") == "service_healthy"
    assert depends_on(service(compose, "temporal-ui")).get("temporal") in {
        "service_healthy",
        "service_started",
    }
    migrate_deps = depends_on(service(compose, "migrate"))
    assert migrate_deps.get("postgres") == "service_healthy"
    for name in ("api", "worker"):
        deps = depends_on(service(compose, name))
        assert deps.get("migrate") == "service_completed_successfully", (name, deps)
        assert deps.get("temporal") == "service_healthy", (name, deps)


def test_migrate_is_a_one_shot_job(compose):
    migrate = service(compose, "migrate")
    assert command(migrate) == ["onboarding", "migrate"]
    # "no" must stay a string: unquoted, YAML would turn it into False.
    assert migrate.get("restart", "no") == "no"


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


# --- one environment for every app process ---------------------------------------------


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


def test_temporal_uses_the_same_postgres(compose):
    pg_env = env(service(compose, "postgres"))
    t_env = env(service(compose, "temporal"))
    assert t_env["DB"] == "postgres12"
    assert t_env["POSTGRES_SEEDS"] == "postgres"
    assert t_env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert t_env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]
    # auto-setup creates its own `temporal` / `temporal_visibility`; not the app's database.
    assert pg_env["POSTGRES_DB"] not in {"temporal", "temporal_visibility"}


def test_temporal_address_points_at_the_temporal_service(compose):
    for name in APP_SERVICES:
        assert env(service(compose, name))["TEMPORAL_ADDRESS"] == "temporal:7233", name
    assert env(service(compose, "temporal-ui"))["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_namespace_the_app_uses_is_the_one_temporal_creates(compose):
    namespace = env(service(compose, "api"))["TEMPORAL_NAMESPACE"]
    t_env = env(service(compose, "temporal"))
    assert t_env.get("DEFAULT_NAMESPACE", "default") == namespace
    assert t_env.get("SKIP_DEFAULT_NAMESPACE_CREATION", "false") != "true"
    assert namespace in healthcheck_text(service(compose, "temporal")).split()


def test_local_stack_does_not_switch_temporal_to_tls(compose):
    # temporalio.envconfig turns TLS on when TEMPORAL_API_KEY or any TEMPORAL_TLS* variable
    # is present, even empty; the local dev server is plaintext.
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


def test_api_keys_are_a_json_object_of_known_roles(compose):
    raw = env(service(compose, "api"))["API_KEYS"]
    assert raw is not None
    keys = json.loads(raw)
    assert isinstance(keys, dict)
    assert keys
    assert set(keys.values()) <= ROLES, keys


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


def test_every_app_env_var_is_documented(compose):
    doc = DEPLOYMENT_DOC.read_text()
    for name in APP_SERVICES:
        keys = set(env(service(compose, name)))
        unknown = keys - DOCUMENTED_APP_ENV
        assert not unknown, f"{name} sets undocumented variables {sorted(unknown)}"
        missing_in_doc = sorted(k for k in keys if k not in doc)
        assert not missing_in_doc, f"docs/deployment.md does not mention {missing_in_doc}"


def test_secrets_are_passed_through_not_hard_coded(compose):
    for name in APP_SERVICES:
        app_env = env(service(compose, name))
        for key in ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            value = app_env.get(key)
            assert value is None or value.startswith("${"), f"{name}: {key} is hard-coded"


# --- profile `scale`: two workers and two API replicas behind one balancer ------------


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
    doc = DEPLOYMENT_DOC.read_text()
    for name, app_env in envs.items():
        assert set(app_env) <= DOCUMENTED_APP_ENV, (name, sorted(set(app_env) - DOCUMENTED_APP_ENV))
        assert all(k in doc for k in app_env), name


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


def test_image_environment_is_documented_and_fits_the_containers(dockerfile):
    image_env = dockerfile_env(final_stage(dockerfile_instructions(dockerfile)))
    unknown = set(image_env) - DOCUMENTED_APP_ENV - IMAGE_ONLY_ENV
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
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
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
