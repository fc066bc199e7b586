"""The what-if fixtures: a hand-written history of 14 onboarding cases (``fixtures/history.csv``)
and drafts of ``client_onboarding`` made by editing the shipped YAML.

The history (all times UTC; March 2026 is GMT, April BST). Compliance review, working time
in 24/7 and in ``uk_business_hours`` (Mon-Fri 09:00-17:30 London, bank holidays):

======  ===================  ==========================================  ========  ======
case    client               compliance review                           24/7      office
======  ===================  ==========================================  ========  ======
WI-01   individual standard  Mon 10:00-13:00                             3h        3h
WI-02   business standard    Mon 10:00-15:00                             5h        5h
WI-03   business premium FR  Mon 10:00-17:59                             7h59m     7h30m
WI-04   enterprise standard  Mon 10:00-19:00 (breached), security 8h     9h        7h30m
WI-05   individual premium   Mon 10:00-14:00 (fatca)                     4h        4h
WI-06   individual US        Mon 10:00-16:00, cancelled there            6h        6h
WI-07   enterprise premium   Mon 10:00-12:00, security 3h                2h        2h
WI-08   business standard    10:00-15:00 sent back, then 16:00-17:00     5h, 1h    5h, 1h
WI-09   individual premium   Mon 10:00-13:00, then the case ended there  3h        3h
WI-10   business premium     Mon 10:00-12:00                             2h        2h
WI-11   business standard    Fri 16:00 - Mon 10:00 (breached)            66h       2h30m
WI-12   business standard    Mon 09:00-18:00 (breached)                  9h        8h30m
WI-13   individual standard  Thu 2 Apr 15:00 - Tue 7 Apr 10:00 (Easter)  115h      3h30m
WI-14   individual standard  Tue 20:00 - Wed 07:00 (breached)            11h       0h
======  ===================  ==========================================  ========  ======

Every case but WI-06 and WI-09 runs the whole route (enterprise ones through security review);
every recorded ``breached`` flag is what the shipped budgets (24/7) give.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from playbooks.registry import DEFAULT_FOLDER
from schemas.history import StageInterval, read_csv

HERE = Path(__file__).resolve().parent
HISTORY_CSV = HERE / "fixtures" / "history.csv"
SHIPPED = DEFAULT_FOLDER / "client_onboarding.yaml"

Raw = dict[str, Any]


def history() -> list[StageInterval]:
    with open(HISTORY_CSV, encoding="utf-8", newline="") as source:
        intervals, problems = read_csv(source)
    assert not problems, problems
    return intervals


def stage(raw: Raw, key: str) -> dict[str, Any]:
    return next(s for s in raw["stages"] if s["key"] == key)


def write_draft(folder: Path, mutate: Callable[[Raw], None], name: str = "draft.yaml") -> Path:
    """The shipped client_onboarding, edited by ``mutate``, written to ``folder/name``."""
    raw = copy.deepcopy(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))
    mutate(raw)
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def cut_compliance(raw: Raw) -> None:
    stage(raw, "compliance_review")["sla"] = "4h"


def office_hours_compliance(raw: Raw) -> None:
    stage(raw, "compliance_review")["calendar"] = "uk_business_hours"


def security_for_premium(raw: Raw) -> None:
    stage(raw, "security_review")["when"] = {"field": "client.tier", "eq": "premium"}


def unchanged(raw: Raw) -> None:
    pass


def renamed(name: str, then: Callable[[Raw], None] = unchanged) -> Callable[[Raw], None]:
    """A draft of a case type called ``name`` (not in service): the shipped onboarding."""

    def mutate(raw: Raw) -> None:
        raw["name"] = name
        then(raw)

    return mutate


def as_type(name: str) -> list[StageInterval]:
    """The fixture history as cases of case type ``name`` (refs prefixed, so they are unique
    in a shared database)."""
    from dataclasses import replace

    return [
        replace(iv, case_type=name, case_ref=f"{name[-8:].upper()}-{iv.case_ref}")
        for iv in history()
    ]


async def insert_history(sessions: Any, intervals: list[StageInterval]) -> None:
    """Rows in ``history_intervals``, as an import leaves them."""
    from dataclasses import fields

    from store.models import HistoryInterval

    async with sessions() as session:
        for iv in intervals:
            values = {f.name: getattr(iv, f.name) for f in fields(iv)}
            values["service_requirements"] = list(iv.service_requirements)
            session.add(HistoryInterval(**values, source="imported"))
        await session.commit()
