"""Workflows import contracts and schemas only: never an activity implementation, a database
driver, a fuzzy matcher, a template engine or an HTTP client (the sandbox re-imports workflow
code for every run, and anything heavy there slows every case and risks non-determinism)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import workflows

REPO = Path(__file__).resolve().parents[1]
HEAVY: tuple[str, ...] = ("sqlalchemy", "asyncpg", "rapidfuzz", "jinja2", "httpx", "sendgrid")
HEAVY += ("twilio",)
# document reading and intake checks (schemas/identifiers.py imports these lazily)
HEAVY += ("PIL", "pypdf", "rapidocr_onnxruntime", "phonenumbers", "stdnum", "schwifty")


def modules_loaded_by(*names: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(names)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def every_workflow_module() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(workflows.__path__, prefix="workflows.")
        if not m.ispkg or m.name == "workflows.engine.elements"
    ]


def test_the_walk_finds_both_workflow_types():
    found = every_workflow_module()
    assert "workflows.engine.case_workflow" in found
    assert "workflows.onboarding" in found
    assert "workflows.engine.elements.approval" in found


def test_importing_every_workflow_module_loads_nothing_heavy():
    loaded = modules_loaded_by(*every_workflow_module())
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
    ours = sorted(m for m in loaded if m.split(".")[0] in ("activities", "store", "api"))
    assert ours == []


def test_a_heavy_import_would_be_seen():
    """The check itself works: importing an activity module does load sqlalchemy."""
    loaded = modules_loaded_by("activities.engine_store")
    assert "sqlalchemy" in loaded


def test_the_api_addresses_workflows_by_name():
    loaded = modules_loaded_by("api.app")
    assert not {
        m for m in loaded if m.startswith("workflows.") and m != "workflows.search_attributes"
    }
