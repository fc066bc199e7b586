"""The Grafana dashboard and docs/observability.md name the metrics the code exports."""

from __future__ import annotations

import json
import re

from api.observability import REGISTRY
from core import metrics
from tests.conftest import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "onboarding-dashboard.json"
DOC = REPO / "docs" / "observability.md"
READ_MODEL = {
    "onboarding_cases_active",
    "onboarding_projection_dead_letters_unresolved",
    "onboarding_read_model_up",
}


def exported() -> set[str]:
    """Every onboarding_* metric: the worker's counters, the API's, the read-model gauges."""
    worker = {
        f"{value}_total"
        for name, value in vars(metrics).items()
        if name.isupper() and isinstance(value, str) and value.startswith("onboarding_")
    }
    api = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("onboarding_")
    }
    return worker | api | READ_MODEL


def test_every_onboarding_metric_in_the_dashboard_exists():
    board = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    assert exprs
    used = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for expr in exprs
        for name in re.findall(r"\bonboarding_[a-z_]+", expr)
    }
    assert used <= exported(), used - exported()
    # every panel has a data source input, so an import asks for one
    assert board["__inputs"][0]["pluginId"] == "prometheus"


def test_the_doc_lists_every_exported_metric():
    text = DOC.read_text()
    missing = [name for name in sorted(exported()) if f"`{name}`" not in text]
    assert not missing, missing
