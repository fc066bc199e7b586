"""Small seeded histories, generated once per test session (a few hundred cases: fast).

The generator is ``bench/gen_history.py``. The bench scripts import their neighbours by file
name (they run as scripts, not as ``bench.*`` modules), so it is loaded here from its path,
once, as ``gen_history``, and handed to tests as a fixture."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schemas.history import StageInterval

SEED = 3


def _load_generator() -> ModuleType:
    if "gen_history" in sys.modules:
        return sys.modules["gen_history"]
    path = Path(__file__).resolve().parents[2] / "bench" / "gen_history.py"
    spec = importlib.util.spec_from_file_location("gen_history", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_history"] = module
    spec.loader.exec_module(module)
    return module


GEN_HISTORY = _load_generator()


@pytest.fixture(scope="session")
def gen_history() -> ModuleType:
    return GEN_HISTORY


@pytest.fixture(scope="session")
def generate() -> Any:
    """``gen_history.generate(n_cases, seed) -> list[StageInterval]``."""
    return GEN_HISTORY.generate


@pytest.fixture(scope="session")
def history(generate) -> list[StageInterval]:
    """600 client onboarding cases (about 580 finished): enough for the model."""
    return generate(600, SEED)


@pytest.fixture(scope="session")
def eta_model(history: list[StageInterval]):
    from analytics.eta import fit

    return fit(history, holdout=0.2)
