"""Read and validate a playbook file (I/O, so never called from workflow code: the
plan_case activity and the portal call it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.plan import Playbook


def load_playbook(path: Path) -> Playbook:
    """Parse and validate; a bad playbook fails loudly at worker start, not mid-case."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return Playbook.model_validate(data)
