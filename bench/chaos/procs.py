"""The stack's parts as child processes the chaos harness can start, stop and kill -9.

Postgres (the binaries of the ``pgserver`` wheel, run directly so the harness holds the
postmaster's pid), the Temporal dev server with file persistence, and ``onboarding worker`` /
``onboarding api``. Each listens on a free port of 127.0.0.1 and keeps its state under the
run's own temp dir; output goes to ``<root>/logs/<name>.log`` (appended across restarts).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
PG_USER = "postgres"
PG_DATABASE = "onboarding"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def venv_binary(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found next to {sys.executable} or on PATH")
    return found


class Child:
    """One process of the stack. ``planned`` marks a stop the scenario caused (not a crash)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        *,
        logs: Path,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.user = user
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.planned = False
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log.flush()
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs["user"] = self.user
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the harness's Ctrl-C is for the harness; it stops us
            **kwargs,
        )
        self.starts += 1
        self.planned = False

    def kill9(self) -> None:
        """SIGKILL, as ``kill -9`` does; waits for the process to be gone."""
        self.planned = True
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """``sig``, then SIGKILL after ``timeout``."""
        self.planned = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.stop(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _pg_bin() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _system_user() -> str | None:
    """Postgres refuses to run as root: then it runs as pgserver's own system user."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


class Postgres:
    """A Postgres server on a TCP port of 127.0.0.1 (no unix socket), data under ``root``."""

    def __init__(self, root: Path, logs: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()
        self.user = _system_user()
        self.bin = _pg_bin()
        self.child = Child(
            "postgres",
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ],
            logs=logs,
            user=self.user,
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if self.user is not None:
            import pwd

            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(self.data)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o055)
            ensure_folder_permissions(self.bin.parent / "lib", 0o044)
            entry = pwd.getpwnam(self.user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--encoding=utf8",
                "-U",
                PG_USER,
            ],
            check=True,
            capture_output=True,
            **kwargs,
        )

    def start(self, timeout: float = 60) -> None:
        """Start and wait until it takes connections. After a kill -9 the postmaster's
        orphaned backends may still hold the shared memory for a moment: start again."""
        deadline = time.monotonic() + timeout
        self.child.start()
        while time.monotonic() < deadline:
            if not self.child.alive():
                time.sleep(0.5)  # e.g. "pre-existing shared memory block is still in use"
                self.child.start()
                continue
            if self.ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"postgres not ready after {timeout:.0f}s\n{self.child.tail()}")

    def ready(self) -> bool:
        done = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return done.returncode == 0

    def create_database(self) -> None:
        subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-q",
                "-c",
                f'CREATE DATABASE "{PG_DATABASE}"',
            ],
            check=True,
            capture_output=True,
        )

    def stop_fast(self) -> None:
        """``pg_ctl stop -m fast``: SIGINT to the postmaster (clients are disconnected)."""
        self.child.stop(signal.SIGINT, timeout=60)

    def kill9(self) -> None:
        """SIGKILL to the postmaster: its backends notice and exit; crash recovery on start."""
        self.child.kill9()


class Temporal:
    """``temporal server start-dev`` with a SQLite file: state survives a restart."""

    def __init__(self, root: Path, logs: Path, search_attributes: list[str]) -> None:
        self.port = free_port()
        cmd = [
            venv_binary("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(root / "temporal.db"),
            "--port",
            str(self.port),
            "--ip",
            "127.0.0.1",
            "--headless",
            "--log-level",
            "warn",
        ]
        for name in search_attributes:
            cmd += ["--search-attribute", f"{name}=Keyword"]
        self.child = Child("temporal", cmd, logs=logs)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.child.start()
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if not self.child.alive():
                raise RuntimeError(f"temporal exited during start-up\n{self.child.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"temporal not listening after {timeout:.0f}s")
            time.sleep(0.2)
