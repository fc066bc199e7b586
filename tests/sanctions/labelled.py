"""The labelled screening set (bench/screening_data.py) as the sanctions tests read it."""

from __future__ import annotations

import datetime as dt
import json

from bench.screening_data import LABELLED
from integrations.sanctions import ScreeningSubject

ROWS = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line]


def subject_of(row: dict[str, object]) -> ScreeningSubject:
    """A labelled row screened as onboarding would: with its DOB, country and type."""
    dob = dt.date.fromisoformat(str(row["dob"])) if row.get("dob") else None
    kind = row.get("type")
    return ScreeningSubject(
        str(row["name"]),
        dob,
        str(row["country"]) if row.get("country") else None,
        "entity" if kind == "entity" else "person" if kind == "person" else None,
    )
