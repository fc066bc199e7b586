"""Workflow code never loads the learning stack: the sandbox re-imports workflow modules for
every run, and numpy/LightGBM there would cost every case."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("lightgbm", "sklearn", "numpy", "scipy", "analytics")


def loaded_by(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    import json

    return {m.split(".")[0] for m in json.loads(out)}


def test_workflow_code_the_contract_and_the_activity_module_are_light():
    """One interpreter: the case workflow, the ETA contract and the activity module together
    load none of it (the model loads with the activity's first call)."""
    code = (
        "import sys, workflows.engine.case_workflow, schemas.eta, activities.eta\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_analytics_does_load_lightgbm():
    """The check itself can see it."""
    assert "lightgbm" in loaded_by("analytics.eta")
