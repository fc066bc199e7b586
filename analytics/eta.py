"""Completion-time estimates for new cases, learned from history.

``fit(intervals)`` learns, from finished cases, how long a case takes from ``created_at`` to
the exit of its last stage, as three quantile models (p10, p50, p90; LightGBM with the
quantile objective on log hours) over what is known when a case opens:

- case type, client type, tier, country (the frequent ones; the rest as one), international
  (country other than the case type's home country), each frequent service requirement and
  their count, documents submitted at creation;
- when it opened, calendar-aware: local weekday and hour, hours until the office next opens,
  office hours in the next 24 h and 72 h, and the wall-clock hours until 8 office hours have
  passed (a Friday-evening case waits the weekend; a bank holiday counts as closed).

A finished case is one that reached its case type's usual last stage (for client onboarding:
``welcome``) and was never cancelled: withdrawn and rejected cases say nothing about how long
completion takes.

``EtaModel.predict(facts)`` answers for many cases at once. For a case type with fewer than
``MIN_CASES`` finished cases in the history it learned from, or with no model at all
(``fallback``), the estimate is the sum of the SLA budgets of the stages the case would go
through, flagged ``basis="budgets"`` so callers can say it is not learned.

The stored form (``to_record``/``from_blob``) is JSON with LightGBM's text model format inside;
the in-memory model predicts from that same text, so a stored and reloaded model gives
identical answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import lightgbm as lgb
import numpy as np

from analytics.casetypes import CaseTypes, shipped
from analytics.common import (
    Floats,
    Record,
    Vocab,
    by_case,
    data_hash,
    in_holdout,
    make_version,
    pack,
    unpack,
)
from analytics.worktime import WorkIndex
from schemas.calendar import CalendarDef
from schemas.history import CaseFacts, StageInterval

KIND = "eta"
FORMAT = "onboarding.eta/1"
MIN_CASES = 200
"""Finished cases of a case type needed before its estimates come from the model."""
QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
TOLERANCE_HOURS = 4.0
PARAMS: dict[str, Any] = {
    "objective": "quantile",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "max_cat_to_onehot": 8,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "seed": 7,
}
ROUNDS = 300

Budgets = Callable[[CaseFacts], float | None]
"""Hours of SLA budget along the route a case would take (None: unknown case type)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """Hours from ``created_at``: p10 <= p50 <= p90. ``basis``: "model" (learned) or
    "budgets" (the sum of the route's stage SLAs: too little history to learn from)."""

    p10: float
    p50: float
    p90: float
    basis: Literal["model", "budgets"]

    def times(self, created_at: datetime) -> tuple[datetime, datetime, datetime]:
        """The three as instants (to the second)."""
        return (
            created_at + timedelta(seconds=round(self.p10 * 3600)),
            created_at + timedelta(seconds=round(self.p50 * 3600)),
            created_at + timedelta(seconds=round(self.p90 * 3600)),
        )


# ----------------------------------------------------------------------------- history
def last_stages(cases: dict[str, list[StageInterval]]) -> dict[str, str]:
    """Each case type's usual last stage (the most frequent final stage of its cases)."""
    counts: dict[str, dict[str, int]] = {}
    for visits in cases.values():
        by_stage = counts.setdefault(visits[0].case_type, {})
        by_stage[visits[-1].stage] = by_stage.get(visits[-1].stage, 0) + 1
    return {t: max(sorted(c), key=lambda s: c[s]) for t, c in counts.items()}


def finished(intervals: Sequence[StageInterval]) -> list[tuple[CaseFacts, float]]:
    """(facts, total hours) of every finished case, in case-reference order."""
    cases = by_case(intervals)
    last = last_stages(cases)
    out = []
    for ref in sorted(cases):
        visits = cases[ref]
        if visits[-1].stage != last[visits[0].case_type] or visits[-1].outcome != "completed":
            continue
        if any(v.outcome == "cancelled" for v in visits):
            continue
        end = max(v.exited_at for v in visits)
        out.append((visits[0].facts, (end - visits[0].created_at).total_seconds() / 3600))
    return out


# ----------------------------------------------------------------------------- features
@dataclass
class Features:
    """How facts become a feature matrix: the vocabularies and calendar learned at fit."""

    case_types: Vocab
    client_types: Vocab
    tiers: Vocab
    countries: Vocab
    requirements: list[str]
    home_country: dict[str, str]
    calendar: CalendarDef
    work: WorkIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.work = WorkIndex(self.calendar)

    CATEGORICAL = ("case_type", "client_type", "tier", "country")

    @property
    def names(self) -> list[str]:
        return [
            *self.CATEGORICAL,
            "international",
            "n_requirements",
            *(f"req_{r}" for r in self.requirements),
            "documents_submitted",
            "weekday",
            "hour",
            "hours_until_open",
            "office_hours_next_24h",
            "office_hours_next_72h",
            "hours_until_8_office_hours",
        ]

    @classmethod
    def learn(
        cls, facts: Sequence[CaseFacts], case_types: CaseTypes, calendar: CalendarDef
    ) -> Features:
        return cls(
            case_types=Vocab.of(f.case_type for f in facts),
            client_types=Vocab.of(f.client_type for f in facts),
            tiers=Vocab.of(f.tier for f in facts),
            countries=Vocab.of((f.country for f in facts), min_count=30),
            requirements=Vocab.of(
                (r for f in facts for r in f.service_requirements), min_count=20
            ).values,
            home_country={t: case_types.home_country(t) for t in {f.case_type for f in facts}},
            calendar=calendar,
        )

    def matrix(self, facts: Sequence[CaseFacts]) -> Floats:
        n = len(facts)
        cols: list[Floats] = [
            self.case_types.codes([f.case_type for f in facts]),
            self.client_types.codes([f.client_type for f in facts]),
            self.tiers.codes([f.tier for f in facts]),
            self.countries.codes([f.country for f in facts]),
        ]
        home = self.home_country
        cols.append(
            np.fromiter(
                (f.country != home.get(f.case_type, "GB") for f in facts), np.float64, count=n
            )
        )
        cols.append(np.fromiter((len(f.service_requirements) for f in facts), np.float64, count=n))
        for r in self.requirements:
            cols.append(
                np.fromiter((r in f.service_requirements for f in facts), np.float64, count=n)
            )
        cols.append(
            np.fromiter((f.documents_submitted_at_creation for f in facts), np.float64, count=n)
        )
        t = np.fromiter((f.created_at.timestamp() for f in facts), np.float64, count=n)
        cols.extend(self.time_columns(t))
        return np.column_stack(cols) if n else np.empty((0, len(self.names)))

    def time_columns(self, t: Floats) -> list[Floats]:
        """Local weekday and hour, and the office-hours view of the instants ``t``."""
        work = self.work
        weekday, hour = work.local(t)
        worked = work.worked(t)
        return [
            weekday.astype(np.float64),
            hour,
            work.until_open(t) / 3600,
            (work.worked(t + 24 * 3600) - worked) / 3600,
            (work.worked(t + 72 * 3600) - worked) / 3600,
            (work.instant(worked + 8 * 3600) - t) / 3600,
        ]

    def dump(self) -> dict[str, Any]:
        return {
            "case_types": self.case_types.values,
            "client_types": self.client_types.values,
            "tiers": self.tiers.values,
            "countries": self.countries.values,
            "requirements": self.requirements,
            "home_country": self.home_country,
            "calendar": self.calendar.model_dump(mode="json"),
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Features:
        return cls(
            case_types=Vocab(raw["case_types"]),
            client_types=Vocab(raw["client_types"]),
            tiers=Vocab(raw["tiers"]),
            countries=Vocab(raw["countries"]),
            requirements=list(raw["requirements"]),
            home_country=dict(raw["home_country"]),
            calendar=CalendarDef.model_validate(raw["calendar"]),
        )


# ----------------------------------------------------------------------------- the model
def _train(x: Floats, hours: Floats, features: Features) -> dict[str, lgb.Booster]:
    target = np.log1p(hours)
    params = dict(PARAMS, min_data_in_leaf=max(5, min(PARAMS["min_data_in_leaf"], len(x) // 20)))
    boosters = {}
    for name, alpha in QUANTILES.items():
        data = lgb.Dataset(
            x,
            target,
            feature_name=features.names,
            categorical_feature=list(Features.CATEGORICAL),
            free_raw_data=True,
        )
        trained = lgb.train(dict(params, alpha=alpha), data, num_boost_round=ROUNDS)
        # predict from the text form, exactly what is stored
        boosters[name] = lgb.Booster(model_str=trained.model_to_string())
    return boosters


@dataclass
class EtaModel:
    version: str
    fitted_at: datetime
    features: Features
    boosters: dict[str, lgb.Booster]
    cases_by_type: dict[str, int]
    summary: dict[str, Any]
    min_cases: int = MIN_CASES

    @property
    def cases(self) -> int:
        return sum(self.cases_by_type.values())

    def learned(self, case_type: str) -> bool:
        return self.cases_by_type.get(case_type, 0) >= self.min_cases

    def quantiles(self, facts: Sequence[CaseFacts]) -> Floats:
        """(n, 3) hours, p10 <= p50 <= p90, from the model whatever the case type."""
        if not facts:
            return np.empty((0, 3))
        x = self.features.matrix(facts)
        raw = np.column_stack([self.boosters[q].predict(x, num_threads=1) for q in QUANTILES])
        return np.sort(np.expm1(np.maximum(raw, 0.0)), axis=1)

    def predict(self, facts: Sequence[CaseFacts], budgets: Budgets | None = None) -> list[Estimate]:
        """One estimate per case, in order. Case types the model has not learned (fewer than
        ``min_cases`` finished cases) get the budget fallback (``budgets``: default the
        shipped case types' routes); a case type neither knows raises ``ValueError``."""
        learned = [self.learned(f.case_type) for f in facts]
        out: list[Estimate | None] = [None] * len(facts)
        modelled = [f for f, ok in zip(facts, learned, strict=True) if ok]
        q = self.quantiles(modelled)
        k = 0
        for i, ok in enumerate(learned):
            if ok:
                out[i] = Estimate(float(q[k, 0]), float(q[k, 1]), float(q[k, 2]), "model")
                k += 1
        rest = [i for i, ok in enumerate(learned) if not ok]
        if rest:
            for i, est in zip(rest, fallback([facts[i] for i in rest], budgets), strict=True):
                out[i] = est
        return [e for e in out if e is not None]

    # -- storage
    def to_blob(self) -> bytes:
        return pack(
            {
                "format": FORMAT,
                "version": self.version,
                "fitted_at": self.fitted_at.isoformat(),
                "features": self.features.dump(),
                "boosters": {q: b.model_to_string() for q, b in self.boosters.items()},
                "cases_by_type": self.cases_by_type,
                "min_cases": self.min_cases,
                "summary": self.summary,
            }
        )

    def to_record(self) -> Record:
        return Record(KIND, self.version, self.fitted_at, self.cases, self.summary, self.to_blob())

    @classmethod
    def from_blob(cls, blob: bytes) -> EtaModel:
        raw = unpack(blob, FORMAT)
        return cls(
            version=raw["version"],
            fitted_at=datetime.fromisoformat(raw["fitted_at"]),
            features=Features.load(raw["features"]),
            boosters={q: lgb.Booster(model_str=s) for q, s in raw["boosters"].items()},
            cases_by_type={k: int(v) for k, v in raw["cases_by_type"].items()},
            summary=raw["summary"],
            min_cases=int(raw["min_cases"]),
        )


def fallback(facts: Sequence[CaseFacts], budgets: Budgets | None = None) -> list[Estimate]:
    """The estimate without a model: the sum of the SLA budgets along each case's route."""
    hours_of = budgets or shipped().budget_hours
    out = []
    for f in facts:
        hours = hours_of(f)
        if hours is None:
            raise ValueError(f"case type {f.case_type!r}: no model and no stage budgets known")
        out.append(Estimate(hours, hours, hours, "budgets"))
    return out


def predict(
    model: EtaModel | None, facts: Sequence[CaseFacts], budgets: Budgets | None = None
) -> list[Estimate]:
    """``model.predict``, or the budget fallback for every case when there is no model."""
    return model.predict(facts, budgets) if model is not None else fallback(facts, budgets)


# ----------------------------------------------------------------------------- baseline
@dataclass
class SegmentMedian:
    """The baseline: the median duration of the case's segment (case type, client type, tier,
    international, documents submitted) in training, else of its case type, else of all."""

    by_segment: dict[tuple[str, ...], float]
    by_type: dict[str, float]
    overall: float
    home_country: dict[str, str]

    @staticmethod
    def segment(f: CaseFacts, home: dict[str, str]) -> tuple[str, ...]:
        return (
            f.case_type,
            f.client_type,
            f.tier,
            str(f.country != home.get(f.case_type, "GB")),
            str(f.documents_submitted_at_creation),
        )

    @classmethod
    def fit(cls, rows: Sequence[tuple[CaseFacts, float]], home: dict[str, str]) -> SegmentMedian:
        seg: dict[tuple[str, ...], list[float]] = {}
        typ: dict[str, list[float]] = {}
        for f, h in rows:
            seg.setdefault(cls.segment(f, home), []).append(h)
            typ.setdefault(f.case_type, []).append(h)
        return cls(
            {k: float(np.median(v)) for k, v in seg.items() if len(v) >= 10},
            {k: float(np.median(v)) for k, v in typ.items()},
            float(np.median([h for _, h in rows])) if rows else 0.0,
            home,
        )

    def predict(self, facts: Sequence[CaseFacts]) -> Floats:
        return np.array(
            [
                self.by_segment.get(
                    self.segment(f, self.home_country), self.by_type.get(f.case_type, self.overall)
                )
                for f in facts
            ],
            dtype=np.float64,
        )


# ----------------------------------------------------------------------------- fit, evaluate
def scores(predicted: Floats, actual: Floats) -> dict[str, float]:
    err = np.abs(predicted - actual)
    return {
        "within_4h": float(np.mean(err <= TOLERANCE_HOURS)) if len(err) else math.nan,
        "mae_hours": float(np.mean(err)) if len(err) else math.nan,
        "median_abs_error_hours": float(np.median(err)) if len(err) else math.nan,
    }


def _split(rows: list[tuple[CaseFacts, float]], holdout: float, seed: int) -> tuple[list, list]:
    train = [r for r in rows if not in_holdout(r[0].case_ref, holdout, seed)]
    test = [r for r in rows if in_holdout(r[0].case_ref, holdout, seed)]
    return train, test


def _fit_rows(
    rows: Sequence[tuple[CaseFacts, float]], case_types: CaseTypes, calendar: CalendarDef
) -> tuple[Features, dict[str, lgb.Booster]]:
    facts = [f for f, _ in rows]
    features = Features.learn(facts, case_types, calendar)
    hours = np.array([h for _, h in rows], dtype=np.float64)
    return features, _train(features.matrix(facts), hours, features)


def evaluate(
    intervals: Sequence[StageInterval],
    holdout: float = 0.2,
    *,
    seed: int = 0,
    case_types: CaseTypes | None = None,
) -> dict[str, Any]:
    """Fit on the cases not held out, score on the held-out ones: share within ±4 h and MAE
    of the p50, coverage of [p10, p90], and the per-segment-median baseline's scores."""
    case_types = case_types or shipped()
    rows = finished(intervals)
    train, test = _split(rows, holdout, seed)
    if len(train) < 20 or not test:
        raise ValueError(
            f"too little history to evaluate: {len(train)} finished cases to learn from, "
            f"{len(test)} held out"
        )
    features, boosters = _fit_rows(train, case_types, case_types.office_calendar())
    model = EtaModel("evaluation", datetime.now(UTC), features, boosters, {}, {})
    facts = [f for f, _ in test]
    actual = np.array([h for _, h in test])
    q = model.quantiles(facts)
    baseline = SegmentMedian.fit(train, features.home_country).predict(facts)
    by_client_type = {}
    for client_type in sorted({f.client_type for f in facts}):
        pick = np.array([f.client_type == client_type for f in facts])
        by_client_type[client_type] = {
            "cases": int(pick.sum()),
            "model": scores(q[pick, 1], actual[pick]),
            "baseline": scores(baseline[pick], actual[pick]),
        }
    return {
        "train_cases": len(train),
        "holdout_cases": len(test),
        "holdout_share": holdout,
        "model": {
            **scores(q[:, 1], actual),
            "p10_p90_coverage": float(np.mean((actual >= q[:, 0]) & (actual <= q[:, 2]))),
            "p10_p90_median_width_hours": float(np.median(q[:, 2] - q[:, 0])),
        },
        "baseline": scores(baseline, actual),
        "actual_median_hours": float(np.median(actual)),
        "by_client_type": by_client_type,
    }


def fit(
    intervals: Sequence[StageInterval],
    *,
    holdout: float = 0.2,
    seed: int = 0,
    case_types: CaseTypes | None = None,
    now: datetime | None = None,
) -> EtaModel:
    """Learn from every finished case. With ``holdout`` > 0 (and enough cases) the summary
    carries held-out scores first (``evaluate``); the model returned learned from all."""
    case_types = case_types or shipped()
    rows = finished(intervals)
    if not rows:
        raise ValueError("no finished cases in the history: nothing to learn from")
    fitted_at = (now or datetime.now(UTC)).replace(microsecond=0)
    digest = data_hash(intervals)
    summary: dict[str, Any] = {"data_hash": digest, "intervals": len(intervals)}
    if holdout > 0:
        try:
            summary["holdout"] = evaluate(intervals, holdout, seed=seed, case_types=case_types)
        except ValueError as e:
            summary["holdout"] = {"skipped": str(e)}
    features, boosters = _fit_rows(rows, case_types, case_types.office_calendar())
    counts: dict[str, int] = {}
    for f, _ in rows:
        counts[f.case_type] = counts.get(f.case_type, 0) + 1
    summary["cases_by_type"] = counts
    summary["min_cases"] = MIN_CASES
    summary["features"] = features.names
    version = make_version(fitted_at, digest, {"params": PARAMS, "rounds": ROUNDS})
    return EtaModel(version, fitted_at, features, boosters, counts, summary)


__all__ = [
    "KIND",
    "MIN_CASES",
    "Estimate",
    "EtaModel",
    "SegmentMedian",
    "evaluate",
    "fallback",
    "finished",
    "fit",
    "predict",
]
