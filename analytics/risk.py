"""Breach prediction for an open stage: P(this visit ends after its SLA), learned from history,
against the fixed rule the case types ship (``predictive: {at: 0.6, min_tasks_done: 0.4}``:
at risk when 60% of the SLA is gone and fewer than 40% of the stage's tasks are done).

**Training data.** Each stage visit with an SLA in the history is looked at as it was at
several points of its budget (``SHARES``: 10%, 20%, ... 90% gone), as long as it was still open
then; the label is whether that visit breached (``breached`` of the history row). What is
known at such a point, and what an open stage can be asked live:

- stage, case type, client type, tier, international, the number of service requirements,
  documents submitted at creation, which visit of the stage this is (a send-back comes back);
- the elapsed share of the budget, the budget itself, and calendar-aware: office hours gone
  since the stage began, office hours left before the deadline, local weekday and hour now;
- load: how many visits of the same stage (same case type) were open at that moment (live:
  the open cases in that stage now; the history has no assignees, so a per-person load cannot
  be learned from it);
- tasks done: the history records no tasks, so the share of tasks done is stood in for by
  ``progress_proxy``: office hours spent in the stage over the median office hours a visit of
  that stage takes (visits of at least 15 minutes: automatic ones say nothing), capped at 1.
  Live callers may pass the real share instead.

**The rule in history** is the same check with that proxy as its tasks-done share. It fires
once, at 60%; ``evaluate`` compares both there, on the same visits (and, for the model, at
every later point too). The model alerts when P(breach) >= ``THRESHOLD`` (0.5: more likely
than not), stored with each model so a later fit may choose another operating point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from analytics.casetypes import CaseTypes, shipped
from analytics.common import (
    MISSING,
    Floats,
    Record,
    Vocab,
    by_case,
    data_hash,
    in_holdout,
    make_version,
    pack,
    precision_recall,
    unpack,
)
from analytics.worktime import WorkIndex
from schemas.calendar import CalendarDef
from schemas.history import CaseFacts, StageInterval

KIND = "breach"
FORMAT = "onboarding.breach/1"
SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
RULE_AT, RULE_MIN_TASKS = 0.6, 0.4
QUICK_SECONDS = 15 * 60
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "seed": 7,
}
ROUNDS = 250
THRESHOLD = 0.5
"""Alert when a breach is more likely than not (stored with each model)."""
CATEGORICAL = ("case_type", "stage", "client_type", "tier")
NAMES = [
    *CATEGORICAL,
    "international",
    "n_requirements",
    "documents_submitted",
    "visit",
    "elapsed_share",
    "budget_hours",
    "office_hours_elapsed",
    "office_hours_left",
    "weekday",
    "hour",
    "stage_load",
    "tasks_done_share",
]


@dataclass(frozen=True)
class OpenStage:
    """A stage visit that is open now (or a snapshot of one from history)."""

    facts: CaseFacts
    stage: str
    entered_at: datetime
    at: datetime
    budget_hours: float | None = None  # default: the SLA the model knows for the stage
    visit: int = 1
    stage_load: float | None = None  # open visits of this stage (this case type) now
    tasks_done_share: float | None = None  # default: progress_proxy


@dataclass
class Snapshots:
    """Columns of many snapshots at once (what training and evaluation use)."""

    facts: list[CaseFacts]
    stage: list[str]
    entered: Floats
    at: Floats
    budget: Floats  # seconds
    visit: Floats
    load: Floats
    tasks: Floats  # NaN: use the proxy
    share: Floats
    label: npt.NDArray[np.bool_]


def _visits(cases: dict[str, list[StageInterval]]) -> list[tuple[StageInterval, int]]:
    out = []
    for visits in cases.values():
        seen: dict[str, int] = {}
        for v in visits:
            seen[v.stage] = seen.get(v.stage, 0) + 1
            out.append((v, seen[v.stage]))
    return out


def snapshots(
    intervals: Sequence[StageInterval],
    budgets: dict[str, dict[str, float]],
    shares: Sequence[float] = SHARES,
    *,
    jitter: float = 0.0,
    seed: int = 0,
) -> Snapshots:
    """Every visit with an SLA, at each share of its budget while it was still open there."""
    cases = by_case(intervals)
    visits = [(v, n) for v, n in _visits(cases) if budgets.get(v.case_type, {}).get(v.stage)]
    entered = np.array([v.entered_at.timestamp() for v, _ in visits], dtype=np.float64)
    exited = np.array([v.exited_at.timestamp() for v, _ in visits], dtype=np.float64)
    budget = np.array([budgets[v.case_type][v.stage] for v, _ in visits], dtype=np.float64)
    # load at any instant: visits of the same (case type, stage) open then
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (v, _) in enumerate(visits):
        groups.setdefault((v.case_type, v.stage), []).append(i)
    rng = np.random.default_rng(seed)
    rows: list[npt.NDArray[np.int64]] = []
    row_share: list[Floats] = []
    for s in shares:
        share = np.full(len(visits), s) + (
            rng.uniform(-jitter, jitter, len(visits)) if jitter else 0
        )
        still_open = exited - entered > share * budget
        rows.append(np.nonzero(still_open)[0])
        row_share.append(share[still_open])
    idx = np.concatenate(rows) if rows else np.empty(0, np.int64)
    share = np.concatenate(row_share) if row_share else np.empty(0)
    at = entered[idx] + share * budget[idx]
    load = np.empty(len(idx))
    for members in groups.values():
        m = np.asarray(members)
        e, x = np.sort(entered[m]), np.sort(exited[m])
        pick = np.isin(idx, m)
        t = at[pick]
        load[pick] = np.searchsorted(e, t, side="right") - np.searchsorted(x, t, side="right")
    facts = [v.facts for v, _ in visits]
    return Snapshots(
        facts=[facts[i] for i in idx],
        stage=[visits[i][0].stage for i in idx],
        entered=entered[idx],
        at=at,
        budget=budget[idx],
        visit=np.array([visits[i][1] for i in idx], dtype=np.float64),
        load=load,
        tasks=np.full(len(idx), MISSING),
        share=share,
        label=np.array([visits[i][0].breached for i in idx], dtype=bool),
    )


def typical_office_hours(
    intervals: Sequence[StageInterval], work: WorkIndex
) -> dict[str, dict[str, float]]:
    """Median office hours a visit of each stage takes (visits of at least 15 minutes)."""
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for v in intervals:
        if v.seconds >= QUICK_SECONDS:
            spans.setdefault((v.case_type, v.stage), []).append(
                (v.entered_at.timestamp(), v.exited_at.timestamp())
            )
    out: dict[str, dict[str, float]] = {}
    for (case_type, stage), pairs in spans.items():
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        out.setdefault(case_type, {})[stage] = float(np.median(work.between(a, b))) / 3600
    return out


@dataclass
class Features:
    case_types: Vocab
    stages: Vocab
    client_types: Vocab
    tiers: Vocab
    home_country: dict[str, str]
    budgets: dict[str, dict[str, float]]  # seconds
    typical: dict[str, dict[str, float]]  # office hours
    calendar: CalendarDef

    def __post_init__(self) -> None:
        self.work = WorkIndex(self.calendar)

    def progress_proxy(self, snap: Snapshots, office_elapsed: Floats) -> Floats:
        """Office hours spent over the stage's typical office hours, capped at 1."""
        typical = np.array(
            [
                self.typical.get(f.case_type, {}).get(s, 0.0)
                for f, s in zip(snap.facts, snap.stage, strict=True)
            ]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(typical > 0, office_elapsed / typical, 1.0)
        return np.minimum(share, 1.0)

    def matrix(self, snap: Snapshots) -> tuple[Floats, Floats]:
        """The feature matrix, and the tasks-done share used (given, else the proxy)."""
        facts = snap.facts
        n = len(facts)
        work = self.work
        deadline = snap.entered + snap.budget
        office_elapsed = work.between(snap.entered, snap.at) / 3600
        office_left = work.between(snap.at, deadline) / 3600
        tasks = np.where(
            np.isnan(snap.tasks), self.progress_proxy(snap, office_elapsed), snap.tasks
        )
        weekday, hour = work.local(snap.at)
        home = self.home_country
        x = np.column_stack(
            [
                self.case_types.codes([f.case_type for f in facts]),
                self.stages.codes(snap.stage),
                self.client_types.codes([f.client_type for f in facts]),
                self.tiers.codes([f.tier for f in facts]),
                np.fromiter((f.country != home.get(f.case_type, "GB") for f in facts), float, n),
                np.fromiter((len(f.service_requirements) for f in facts), float, n),
                np.fromiter((f.documents_submitted_at_creation for f in facts), float, n),
                snap.visit,
                snap.share,
                snap.budget / 3600,
                office_elapsed,
                office_left,
                weekday.astype(np.float64),
                hour,
                snap.load,
                tasks,
            ]
        )
        return x, tasks

    def dump(self) -> dict[str, Any]:
        return {
            "case_types": self.case_types.values,
            "stages": self.stages.values,
            "client_types": self.client_types.values,
            "tiers": self.tiers.values,
            "home_country": self.home_country,
            "budgets": self.budgets,
            "typical": self.typical,
            "calendar": self.calendar.model_dump(mode="json"),
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Features:
        return cls(
            case_types=Vocab(raw["case_types"]),
            stages=Vocab(raw["stages"]),
            client_types=Vocab(raw["client_types"]),
            tiers=Vocab(raw["tiers"]),
            home_country=dict(raw["home_country"]),
            budgets=raw["budgets"],
            typical=raw["typical"],
            calendar=CalendarDef.model_validate(raw["calendar"]),
        )


def rule(share: Floats, tasks_done: Floats) -> npt.NDArray[np.bool_]:
    """The shipped rule: at risk when >= 60% of the SLA is gone and < 40% of tasks done."""
    return (share >= RULE_AT - 1e-9) & (tasks_done < RULE_MIN_TASKS)


@dataclass
class BreachModel:
    version: str
    fitted_at: datetime
    features: Features
    booster: lgb.Booster
    threshold: float
    cases: int
    summary: dict[str, Any]

    def probabilities(self, snap: Snapshots) -> Floats:
        if not snap.facts:
            return np.empty(0)
        x, _ = self.features.matrix(snap)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)

    def predict(self, stages: Sequence[OpenStage]) -> list[float]:
        """P(breach) of each open stage, in order."""
        budgets = self.features.budgets
        budget = []
        for s in stages:
            seconds = (
                s.budget_hours * 3600
                if s.budget_hours is not None
                else budgets.get(s.facts.case_type, {}).get(s.stage)
            )
            if not seconds:
                raise ValueError(f"{s.facts.case_type}/{s.stage}: no SLA budget to measure against")
            budget.append(seconds)
        entered = np.array([s.entered_at.timestamp() for s in stages], dtype=np.float64)
        at = np.array([s.at.timestamp() for s in stages], dtype=np.float64)
        b = np.array(budget, dtype=np.float64)
        snap = Snapshots(
            facts=[s.facts for s in stages],
            stage=[s.stage for s in stages],
            entered=entered,
            at=at,
            budget=b,
            visit=np.array([s.visit for s in stages], dtype=np.float64),
            load=np.array(
                [MISSING if s.stage_load is None else s.stage_load for s in stages], np.float64
            ),
            tasks=np.array(
                [MISSING if s.tasks_done_share is None else s.tasks_done_share for s in stages],
                np.float64,
            ),
            share=np.maximum(at - entered, 0.0) / b,
            label=np.zeros(len(stages), dtype=bool),
        )
        return [float(p) for p in self.probabilities(snap)]

    def to_blob(self) -> bytes:
        return pack(
            {
                "format": FORMAT,
                "version": self.version,
                "fitted_at": self.fitted_at.isoformat(),
                "features": self.features.dump(),
                "booster": self.booster.model_to_string(),
                "threshold": self.threshold,
                "cases": self.cases,
                "summary": self.summary,
            }
        )

    def to_record(self) -> Record:
        return Record(KIND, self.version, self.fitted_at, self.cases, self.summary, self.to_blob())

    @classmethod
    def from_blob(cls, blob: bytes) -> BreachModel:
        raw = unpack(blob, FORMAT)
        return cls(
            version=raw["version"],
            fitted_at=datetime.fromisoformat(raw["fitted_at"]),
            features=Features.load(raw["features"]),
            booster=lgb.Booster(model_str=raw["booster"]),
            threshold=float(raw["threshold"]),
            cases=int(raw["cases"]),
            summary=raw["summary"],
        )


# ----------------------------------------------------------------------------- fit, evaluate
def _features(intervals: Sequence[StageInterval], case_types: CaseTypes) -> Features:
    calendar = case_types.office_calendar()
    work = WorkIndex(calendar)
    budgets = {
        t: b for t, b in case_types.budgets().items() if t in {v.case_type for v in intervals}
    }
    return Features(
        case_types=Vocab.of(v.case_type for v in intervals),
        stages=Vocab.of(v.stage for v in intervals),
        client_types=Vocab.of(v.client_type for v in intervals),
        tiers=Vocab.of(v.tier for v in intervals),
        home_country={t: case_types.home_country(t) for t in budgets},
        budgets=budgets,
        typical=typical_office_hours(intervals, work),
        calendar=calendar,
    )


def _booster(features: Features, snap: Snapshots) -> lgb.Booster:
    x, _ = features.matrix(snap)
    params = dict(PARAMS, min_data_in_leaf=max(5, min(PARAMS["min_data_in_leaf"], len(x) // 50)))
    data = lgb.Dataset(
        x, snap.label.astype(np.float64), feature_name=NAMES, categorical_feature=list(CATEGORICAL)
    )
    trained = lgb.train(params, data, num_boost_round=ROUNDS)
    return lgb.Booster(model_str=trained.model_to_string())


def _train(
    intervals: Sequence[StageInterval], case_types: CaseTypes, seed: int
) -> tuple[Features, lgb.Booster]:
    features = _features(intervals, case_types)
    snap = snapshots(intervals, features.budgets, jitter=0.05, seed=seed)
    return features, _booster(features, snap)


def evaluate(
    intervals: Sequence[StageInterval],
    holdout: float = 0.2,
    *,
    seed: int = 0,
    case_types: CaseTypes | None = None,
) -> dict[str, Any]:
    """Learn from the cases not held out; on the held-out ones, precision and recall of the
    model and of the 60/40 rule (with ``progress_proxy``) at the rule's own check (60% of the
    budget gone), and of the model at every later point too."""
    case_types = case_types or shipped()
    train = [v for v in intervals if not in_holdout(v.case_ref, holdout, seed)]
    test = [v for v in intervals if in_holdout(v.case_ref, holdout, seed)]
    if not train or not test:
        raise ValueError("too little history to evaluate: need cases on both sides")
    features, booster = _train(train, case_types, seed)
    threshold = THRESHOLD
    model = BreachModel("evaluation", datetime.now(UTC), features, booster, threshold, 0, {})
    at_check = snapshots(test, features.budgets, shares=(RULE_AT,))
    if not at_check.facts:
        raise ValueError("no held-out stage visit was still open at 60% of its SLA")
    p = model.probabilities(at_check)
    _, tasks = features.matrix(at_check)
    later = snapshots(test, features.budgets, shares=tuple(s for s in SHARES if s >= RULE_AT))
    p_later = model.probabilities(later)
    by_stage = {}
    for stage in sorted(set(at_check.stage)):
        pick = np.array([s == stage for s in at_check.stage])
        by_stage[stage] = {
            "checks": int(pick.sum()),
            "breaches": int(at_check.label[pick].sum()),
            "model": precision_recall(p[pick] >= threshold, at_check.label[pick]),
            "rule": precision_recall(rule(at_check.share, tasks)[pick], at_check.label[pick]),
        }
    return {
        "train_cases": len({v.case_ref for v in train}),
        "holdout_cases": len({v.case_ref for v in test}),
        "checks": len(at_check.facts),
        "breaches": int(at_check.label.sum()),
        "threshold": threshold,
        "model": precision_recall(p >= threshold, at_check.label),
        "rule": precision_recall(rule(at_check.share, tasks), at_check.label),
        "model_from_60_to_90": precision_recall(p_later >= threshold, later.label),
        "by_stage": by_stage,
    }


def fit(
    intervals: Sequence[StageInterval],
    *,
    holdout: float = 0.2,
    seed: int = 0,
    case_types: CaseTypes | None = None,
    now: datetime | None = None,
) -> BreachModel:
    """Learn from all of the history; with ``holdout`` > 0 the summary carries
    ``evaluate``'s held-out comparison with the rule first."""
    case_types = case_types or shipped()
    if not intervals:
        raise ValueError("no history: nothing to learn from")
    fitted_at = (now or datetime.now(UTC)).replace(microsecond=0)
    digest = data_hash(intervals)
    summary: dict[str, Any] = {"data_hash": digest, "intervals": len(intervals)}
    if holdout > 0:
        try:
            summary["holdout"] = evaluate(intervals, holdout, seed=seed, case_types=case_types)
        except ValueError as e:
            summary["holdout"] = {"skipped": str(e)}
    features, booster = _train(intervals, case_types, seed)
    threshold = THRESHOLD
    summary["threshold"] = threshold
    version = make_version(fitted_at, digest, {"params": PARAMS, "rounds": ROUNDS})
    cases = len({v.case_ref for v in intervals})
    return BreachModel(version, fitted_at, features, booster, threshold, cases, summary)
