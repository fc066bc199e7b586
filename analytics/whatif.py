"""What-if: replay the recorded stage timings of past cases against a draft case type.

``whatif(intervals, draft, calendars)`` is a pure computation over history (no I/O, no
workflow touched). For every past case of the draft's case type it answers two questions:

- **Route.** Which stages would the case go through under the draft? A stage's ``when`` is
  evaluated on the fields a history row knows: ``client.client_type``, ``client.tier``,
  ``client.country``, ``client.regulatory_requirements`` (the row's service requirements) and
  ``international`` (country differs from the draft's ``home_country``). A condition reading
  anything else (an automation's output such as ``screening.risk_level``, a declared case
  field, another profile field) is *unknowable* for a past case: evaluated three-valued, it
  decides nothing unless the known parts settle it, and a case whose route hangs on it is
  counted as "route not evaluable", never guessed.
- **SLA.** For each recorded stage interval the draft still runs: is its working time (entered
  to exited, in the draft stage's calendar, else the case type's, else 24/7) above the draft
  stage's ``sla``? "Before" is the recorded ``breached`` flag.

Given ``current`` (the case type in service, which produced the history), a stage whose rule
the draft leaves as it is keeps what was recorded: an unchanged ``when`` keeps the recorded
route through that stage (so a condition on ``screening.*`` that the draft does not touch is
not unknowable), an unchanged budget and calendar keeps the recorded SLA outcome (time the
clock stood still, paused or waiting on the client, is not in the history, so recomputing an
unchanged rule would report changes nobody made).

Where a case ended matters: a stage after the last one a case reached is only claimed when the
case demonstrably ran to its end (last interval completed, and no later stage of the reference
case type, ``current`` or else the draft, would have run for it); a case rejected or cancelled
at compliance never reaches a stage the draft adds after compliance.

Working time is the hot spot: ``WorkingClock`` lays a pinned calendar's working spans over the
history's range out once as epoch seconds with the working time before each span, so each
interval costs two binary searches (the spans come from ``schemas.workcal.spans``, so the
arithmetic is the engine's own).

The rest of the module prepares the inputs (reads files, not pure): ``check_draft`` validates
a draft file exactly like the registry (the file's own checks, the cross-file checks against
the other case types in service, the calendars), and ``pin_calendars`` resolves the calendars
the draft names over the history's time range.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from schemas.calendar import CalendarDef, PinnedCalendar
from schemas.casetype import CaseType, Condition, StageDef
from schemas.conditions import holds, paths
from schemas.history import StageInterval
from schemas.workcal import spans

KNOWN_PATHS = (
    "client.client_type",
    "client.tier",
    "client.country",
    "client.regulatory_requirements",
    "international",
)
"""Condition paths a history row answers; every other path is unknowable for a past case."""

EPSILON = 1e-6
"""Float slack when comparing working seconds with a budget (epoch floats carry microseconds)."""

Decision = bool | None


# ----------------------------------------------------------------------------- conditions
def knowable(path: str) -> bool:
    return any(path == k or path.startswith(k + ".") for k in KNOWN_PATHS)


def unknowable_paths(condition: Condition | None) -> list[str]:
    return list(dict.fromkeys(p for p in paths(condition) if not knowable(p)))


def evaluate(condition: Condition | None, fields: dict[str, Any]) -> Decision:
    """Three-valued ``holds``: True or False when the known fields settle it, None when it
    hangs on a field a past case does not have."""
    if condition is None:
        return True
    if condition.all_ is not None:
        result: Decision = True
        for child in condition.all_:
            value = evaluate(child, fields)
            if value is False:
                return False
            if value is None:
                result = None
        return result
    if condition.any_ is not None:
        result = False
        for child in condition.any_:
            value = evaluate(child, fields)
            if value is True:
                return True
            if value is None:
                result = None
        return result
    if condition.not_ is not None:
        value = evaluate(condition.not_, fields)
        return None if value is None else not value
    assert condition.field is not None
    if not knowable(condition.field):
        return None
    return holds(condition, fields)


def case_fields(interval: StageInterval, home_country: str) -> dict[str, Any]:
    """The condition fields a history row knows."""
    return {
        "client": {
            "client_type": interval.client_type,
            "tier": interval.tier,
            "country": interval.country,
            "regulatory_requirements": list(interval.service_requirements),
        },
        "international": interval.country.upper() != home_country.upper(),
    }


# ----------------------------------------------------------------------------- working time
class WorkingClock:
    """Working seconds of one pinned calendar between instants, O(log spans) per question.

    The working spans from a day before ``start`` to a day after ``end`` (UTC), as epoch
    seconds, each with the working time before it; an overlap (only possible in a DST change
    inside working hours) is counted once."""

    def __init__(self, calendar: PinnedCalendar, start: datetime, end: datetime) -> None:
        self.calendar = calendar
        starts: list[float] = []
        ends: list[float] = []
        before: list[float] = []
        total = 0.0
        last_end = float("-inf")
        limit = (end + timedelta(days=1)).timestamp()
        cursor = start - timedelta(days=1)
        while True:
            finished = False
            newest: datetime | None = None
            for s, e in spans(calendar, cursor):
                a, b = s.timestamp(), e.timestamp()
                if a >= limit:
                    finished = True
                    break
                newest = e
                a = max(a, last_end)
                if b > a:
                    starts.append(a)
                    ends.append(b)
                    before.append(total)
                    total += b - a
                    last_end = b
            # spans() looks ten years ahead at most: go on from the last span it gave
            if finished or newest is None or newest <= cursor:
                break
            cursor = newest
        self.starts = starts
        self.ends = ends
        self.before = before
        self.total = total

    def worked(self, t: float) -> float:
        """Working seconds from the start of the clock up to epoch second ``t``."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        e = self.ends[i]
        return self.before[i] + ((t if t < e else e) - self.starts[i])

    def between(self, a: float, b: float) -> float:
        return 0.0 if b <= a else self.worked(b) - self.worked(a)


# ----------------------------------------------------------------------------- the report
ChangeKind = Literal["sla", "enters", "skips"]


@dataclass(frozen=True, slots=True)
class StageChange:
    """One thing that would be different for one case."""

    stage: str
    kind: ChangeKind
    before: str  # sla: breached | met; enters: not entered; skips: entered
    after: str  # sla: breached | met; enters: enters; skips: skipped | removed
    entered_at: datetime | None = None
    working_seconds: float | None = None
    budget_seconds: float | None = None
    calendar: str | None = None

    def describe(self) -> str:
        if self.kind == "enters":
            return f"would newly enter {self.stage}"
        if self.kind == "skips":
            why = " (not in the draft)" if self.after == "removed" else ""
            return f"would skip {self.stage}{why}"
        worked = duration(self.working_seconds)
        budget = duration(self.budget_seconds) if self.budget_seconds is not None else "no SLA"
        where = self.calendar or "24/7"
        return f"{self.stage}: {self.before} → {self.after} ({worked} of {budget}, {where})"


@dataclass(frozen=True, slots=True)
class CaseChange:
    case_ref: str
    route_before: list[str]
    route_after: list[str] | None  # None: the route is not evaluable from history
    changes: list[StageChange]

    @property
    def route_changed(self) -> bool:
        return any(c.kind != "sla" for c in self.changes)

    @property
    def sla_changed(self) -> bool:
        return any(c.kind == "sla" for c in self.changes)


@dataclass(slots=True)
class StageTotals:
    stage: str
    in_draft: bool
    sla_before: float | None  # the current case type's budget (None: no SLA, or not known)
    sla_after: float | None
    calendar_before: str | None
    calendar_after: str | None
    intervals: int = 0  # recorded
    breaches_before: int = 0  # recorded
    intervals_after: int = 0  # recorded intervals the draft still runs
    breaches_after: int = 0
    newly_breached: int = 0
    no_longer_breached: int = 0
    cases_entering: int = 0  # cases that would newly enter (no timing to judge)
    cases_skipping: int = 0  # cases that went through and would skip it


@dataclass(frozen=True, slots=True)
class NotEvaluable:
    """A stage condition the history cannot answer, and how many cases hang on it."""

    stage: str
    paths: list[str]
    cases: int


@dataclass(slots=True)
class WhatIfReport:
    case_type: str
    draft_version: str
    current_version: str | None
    cases: int = 0
    intervals: int = 0
    other_intervals: int = 0  # of other case types, left out
    cases_changed: int = 0
    cases_route_changed: int = 0
    cases_sla_changed: int = 0
    intervals_sla_changed: int = 0
    cases_not_evaluable: int = 0
    not_evaluable: list[NotEvaluable] = field(default_factory=list)
    changed: list[CaseChange] = field(default_factory=list)
    stages: list[StageTotals] = field(default_factory=list)
    first_created: datetime | None = None
    last_created: datetime | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        """JSON-ready; ``limit`` caps the listed changed cases (``changed_total`` says all)."""
        data = {
            f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.name != "changed"
        }
        data["not_evaluable"] = [asdict(n) for n in self.not_evaluable]
        data["stages"] = [asdict(t) for t in self.stages]
        shown = self.changed if limit is None else self.changed[:limit]
        data["changed"] = [
            {
                "case_ref": c.case_ref,
                "route_before": c.route_before,
                "route_after": c.route_after,
                "changes": [{**asdict(s), "description": s.describe()} for s in c.changes],
            }
            for c in shown
        ]
        data["changed_total"] = len(self.changed)
        return _jsonable(data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def duration(seconds: float | None) -> str:
    """``8h``, ``4h 30m``, ``2d 3h``, ``45m``, ``12s``."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    return " ".join(parts) or "0m"


# ----------------------------------------------------------------------------- what-if
def effective_calendar(case_type: CaseType, stage: StageDef) -> str | None:
    return stage.calendar or case_type.calendar


def _budget(stage: StageDef | None) -> float | None:
    return stage.sla.total_seconds() if stage is not None and stage.sla is not None else None


class _Rules:
    """Per-facts decisions of one case type's stage conditions, cached (a history has few
    distinct combinations of client type, tier, country and requirements)."""

    def __init__(self, case_type: CaseType) -> None:
        self.case_type = case_type
        self.keys = [s.key for s in case_type.stages]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self._cache: dict[tuple[Any, ...], tuple[Decision, ...]] = {}

    def decisions(self, first: StageInterval) -> tuple[Decision, ...]:
        key = (first.client_type, first.tier, first.country, first.service_requirements)
        found = self._cache.get(key)
        if found is None:
            fields = case_fields(first, self.case_type.home_country)
            found = tuple(evaluate(s.when, fields) for s in self.case_type.stages)
            self._cache[key] = found
        return found


def _worked(clock: WorkingClock | None, interval: StageInterval) -> float:
    a, b = interval.entered_at.timestamp(), interval.exited_at.timestamp()
    if clock is None:
        return b - a if b > a else 0.0
    return clock.between(a, b)


def _reached_end(ivs: list[StageInterval], reference: _Rules) -> bool:
    """The case ran to the end of its route: its last interval completed and no later stage of
    the reference case type would have run for it (a rejected or cancelled case did not)."""
    last = ivs[-1]
    at = reference.index.get(last.stage)
    if last.outcome != "completed" or at is None:
        return False
    return all(d is False for d in reference.decisions(ivs[0])[at + 1 :])


@dataclass(frozen=True, slots=True)
class _Route:
    """What the draft does with one recorded route (shared by every case with the same facts
    and the same recorded visits)."""

    before: tuple[str, ...]
    after: tuple[str, ...] | None  # None: not evaluable
    blocking: tuple[str, ...]  # stages whose condition the history cannot answer
    changes: tuple[StageChange, ...]
    entering: tuple[str, ...]
    skipping: tuple[str, ...]
    not_run: frozenset[str]  # recorded stages whose intervals the draft does not run


def _route(
    ivs: list[StageInterval], draft: _Rules, reference: _Rules, same_when: set[str]
) -> _Route:
    before = tuple(dict.fromkeys(iv.stage for iv in ivs if iv.outcome != "skipped"))
    visited = set(before)
    reach = max((draft.index[k] for k in visited if k in draft.index), default=-1)
    decisions = draft.decisions(ivs[0])
    ran_to_end: bool | None = None  # asked only when a draft stage lies beyond its reach
    # True runs, False skips, None unknowable, "beyond": not reached by this case (no claim)
    decided: dict[str, bool | str | None] = {}
    blocking: list[str] = []
    for i, key in enumerate(draft.keys):
        if key not in visited and i > reach:
            if ran_to_end is None:
                ran_to_end = _reached_end(ivs, reference)
            if not ran_to_end:
                decided[key] = "beyond"
                continue
        if key in same_when:
            decided[key] = key in visited
            continue
        decided[key] = decisions[i]
        if decisions[i] is None:
            blocking.append(key)
    changes: list[StageChange] = []
    skipping: list[str] = []
    entering: list[str] = []
    for key in before:
        if key not in draft.index:
            changes.append(StageChange(stage=key, kind="skips", before="entered", after="removed"))
            skipping.append(key)
        elif decided[key] is False:
            changes.append(StageChange(stage=key, kind="skips", before="entered", after="skipped"))
            skipping.append(key)
    for key in draft.keys:
        if key not in visited and decided[key] is True:
            changes.append(
                StageChange(stage=key, kind="enters", before="not entered", after="enters")
            )
            entering.append(key)
    return _Route(
        before=before,
        after=None if blocking else tuple(k for k in draft.keys if decided[k] is True),
        blocking=tuple(blocking),
        changes=tuple(changes),
        entering=tuple(entering),
        skipping=tuple(skipping),
        not_run=frozenset(skipping),
    )


def whatif(
    intervals: Iterable[StageInterval],
    draft: CaseType,
    calendars: Mapping[str, PinnedCalendar],
    *,
    current: CaseType | None = None,
) -> WhatIfReport:
    """Replay ``intervals`` (any order; other case types are counted and left out) against
    ``draft``. ``calendars`` holds every calendar the draft names, pinned over the history's
    range (``pin_calendars``). ``current``: the case type that produced the history (see the
    module docstring); without it every rule of the draft is evaluated afresh."""
    report = WhatIfReport(
        case_type=draft.name,
        draft_version=draft.version,
        current_version=current.version if current is not None else None,
    )
    by_case: dict[str, list[StageInterval]] = {}
    lo: datetime | None = None
    hi: datetime | None = None
    name = draft.name
    for interval in intervals:
        if interval.case_type != name:
            report.other_intervals += 1
            continue
        found = by_case.get(interval.case_ref)
        if found is None:
            by_case[interval.case_ref] = [interval]
        else:
            found.append(interval)
        if lo is None or interval.entered_at < lo:
            lo = interval.entered_at
        if hi is None or interval.exited_at > hi:
            hi = interval.exited_at
        report.intervals += 1
    if not by_case:
        report.notes.append(f"No recorded case of {draft.name} in the history asked for.")
        return report

    # -- rules of the draft, and what they change against the current case type
    draft_rules = _Rules(draft)
    reference = _Rules(current) if current is not None else draft_rules
    current_stages = {s.key: s for s in current.stages} if current is not None else {}
    same_when: set[str] = set()
    same_sla: set[str] = set()
    for stage in draft.stages:
        old = current_stages.get(stage.key)
        if current is None or old is None:
            continue
        if old.when == stage.when:
            same_when.add(stage.key)
        if (old.sla, effective_calendar(current, old)) == (
            stage.sla,
            effective_calendar(draft, stage),
        ):
            same_sla.add(stage.key)
    missing = sorted(
        {n for s in draft.stages if (n := effective_calendar(draft, s))} - set(calendars)
    )
    if missing:
        raise KeyError(f"calendars not given: {', '.join(missing)}")

    # -- one clock per calendar, over the range of the history
    assert lo is not None and hi is not None
    clocks: dict[str, WorkingClock] = {}
    # stage key -> (budget seconds or None, clock or None (24/7), calendar name, keep recorded)
    sla_rule: dict[str, tuple[float | None, WorkingClock | None, str | None, bool]] = {}
    for stage in draft.stages:
        calendar_name = effective_calendar(draft, stage)
        clock = None
        if calendar_name is not None and stage.sla is not None and stage.key not in same_sla:
            clock = clocks.get(calendar_name)
            if clock is None:
                clock = clocks[calendar_name] = WorkingClock(calendars[calendar_name], lo, hi)
        sla_rule[stage.key] = (_budget(stage), clock, calendar_name, stage.key in same_sla)

    # -- totals: every draft stage, then the recorded stages the draft does not have
    totals: dict[str, StageTotals] = {}
    for stage in draft.stages:
        old = current_stages.get(stage.key)
        totals[stage.key] = StageTotals(
            stage=stage.key,
            in_draft=True,
            sla_before=_budget(old),
            sla_after=_budget(stage),
            calendar_before=effective_calendar(current, old)
            if current is not None and old is not None
            else None,
            calendar_after=effective_calendar(draft, stage),
        )

    def totals_for(key: str) -> StageTotals:
        found = totals.get(key)
        if found is None:
            old = current_stages.get(key)
            found = totals[key] = StageTotals(
                stage=key,
                in_draft=False,
                sla_before=_budget(old),
                sla_after=None,
                calendar_before=effective_calendar(current, old)
                if current is not None and old is not None
                else None,
                calendar_after=None,
            )
        return found

    unknown: dict[str, int] = {}
    changed: list[CaseChange] = []
    created_lo: datetime | None = None
    created_hi: datetime | None = None
    routes: dict[tuple[Any, ...], _Route] = {}
    # stage key -> (totals, budget, spans of the clock (None: 24/7), calendar, keep recorded)
    rules: dict[str, tuple[StageTotals, float | None, WorkingClock | None, str | None, bool]] = {
        key: (totals[key], *rule) for key, rule in sla_rule.items()
    }
    by_entry = operator.attrgetter("entered_at", "exited_at")
    bisect_right = bisect.bisect_right

    for ref in sorted(by_case):
        ivs = by_case[ref]
        ivs.sort(key=by_entry)
        first = ivs[0]
        report.cases += 1
        if created_lo is None or first.created_at < created_lo:
            created_lo = first.created_at
        if created_hi is None or first.created_at > created_hi:
            created_hi = first.created_at

        # the route: the same facts and the same recorded visits give the same answer
        signature = (
            first.client_type,
            first.tier,
            first.country,
            first.service_requirements,
            tuple([(iv.stage, iv.outcome) for iv in ivs]),
        )
        route = routes.get(signature)
        if route is None:
            route = routes[signature] = _route(ivs, draft_rules, reference, same_when)
        if route.blocking:
            report.cases_not_evaluable += 1
            for key in route.blocking:
                unknown[key] = unknown.get(key, 0) + 1
        for key in route.skipping:
            totals_for(key).cases_skipping += 1
        for key in route.entering:
            totals[key].cases_entering += 1
        changes = list(route.changes)
        not_run = route.not_run

        # SLA outcome of every recorded interval the draft still runs
        sla_changed = False
        for iv in ivs:
            key = iv.stage
            recorded = iv.breached
            stage_rule = rules.get(key)
            if stage_rule is None or key in not_run:
                t = totals.get(key) or totals_for(key)
                t.intervals += 1
                if recorded:
                    t.breaches_before += 1
                continue  # removed from the draft, or skipped by it for this case
            t, budget, clock, calendar, keep = stage_rule
            t.intervals += 1
            t.intervals_after += 1
            if recorded:
                t.breaches_before += 1
            if keep or budget is None:
                after = recorded if keep else False
                if after:
                    t.breaches_after += 1
                if after == recorded:
                    continue
                worked = _worked(clock, iv)
            else:
                a = iv.entered_at.timestamp()
                b = iv.exited_at.timestamp()
                if b <= a:
                    worked = 0.0
                elif clock is None:
                    worked = b - a
                else:  # WorkingClock.between, inlined: this is the hot loop
                    starts, ends, before = clock.starts, clock.ends, clock.before
                    i = bisect_right(starts, b) - 1
                    e = ends[i] if i >= 0 else 0.0
                    worked = before[i] + ((b if b < e else e) - starts[i]) if i >= 0 else 0.0
                    i = bisect_right(starts, a) - 1
                    if i >= 0:
                        e = ends[i]
                        worked -= before[i] + ((a if a < e else e) - starts[i])
                after = worked > budget + EPSILON
                if after:
                    t.breaches_after += 1
                if after == recorded:
                    continue
            if after:
                t.newly_breached += 1
            else:
                t.no_longer_breached += 1
            report.intervals_sla_changed += 1
            sla_changed = True
            changes.append(
                StageChange(
                    stage=key,
                    kind="sla",
                    before="breached" if recorded else "met",
                    after="breached" if after else "met",
                    entered_at=iv.entered_at,
                    working_seconds=worked,
                    budget_seconds=budget,
                    calendar=calendar if clock is not None else None,
                )
            )
        if changes:
            changed.append(
                CaseChange(
                    ref,
                    list(route.before),
                    list(route.after) if route.after is not None else None,
                    changes,
                )
            )
            report.cases_sla_changed += sla_changed
            report.cases_route_changed += bool(route.changes)

    report.changed = changed
    report.cases_changed = len(changed)
    report.first_created, report.last_created = created_lo, created_hi
    report.stages = list(totals.values())
    report.not_evaluable = [
        NotEvaluable(k, unknowable_paths(draft.stage(k).when), n) for k, n in unknown.items()
    ]
    if report.cases_not_evaluable:
        report.notes.append(
            f"{report.cases_not_evaluable} case(s): route not evaluable, because a stage "
            "condition reads fields a past case does not have (listed below). Those stages are "
            "not guessed: only what the known fields settle is listed, and the case's recorded "
            "intervals are still judged on time."
        )
    if current is None:
        report.notes.append(
            "No case type in service to compare with: every rule of the draft was evaluated "
            "afresh, so the recorded outcome of a stage the draft does not change may differ "
            "where the clock stood still (paused, waiting on the client)."
        )
    return report


# ----------------------------------------------------------------------------- inputs
@dataclass
class DraftCheck:
    """A draft case type validated like the registry validates its files."""

    case_type: CaseType | None
    calendars: dict[str, CalendarDef]
    problems: list[str]


def check_draft(
    path: Path,
    registry: Any,
    *,
    expected_name: str | None = None,
    staff_roles: set[str] | None = None,
    calendar_folders: Sequence[Path] = (),
    label: str | None = None,
) -> DraftCheck:
    """Validate one case type file as the registry would load it next to the case types in
    service (``registry``: a ``CaseTypeRegistry``): the file's own checks, then the cross-file
    checks with the draft in place of the type of the same name, then the calendars of the
    registry's folders plus ``calendar_folders``. ``label`` names the file in problems."""
    resolved = path.resolve()
    shown = registry.label(resolved)

    def named(problems: list[str]) -> list[str]:
        return [p.replace(shown, label) for p in problems] if label else problems

    draft, calendars, problems = registry.check_candidate(
        resolved, staff_roles=staff_roles, calendar_folders=calendar_folders
    )
    if draft is not None and expected_name is not None and draft.name != expected_name:
        problems.insert(
            0,
            f"{shown}: name: the draft is case type {draft.name!r}; a what-if over "
            f"{expected_name} needs a draft of {expected_name} (name: {expected_name})",
        )
    if problems or draft is None:
        return DraftCheck(None, calendars, named(problems))
    return DraftCheck(draft, calendars, [])


def pin_calendars(
    draft: CaseType,
    definitions: Mapping[str, CalendarDef],
    intervals: Sequence[StageInterval],
) -> dict[str, PinnedCalendar]:
    """Every calendar the draft names, pinned so its holidays cover the whole history (a
    pinned calendar knows one year back and three ahead; a longer history is pinned in pieces
    and merged)."""
    names = sorted({n for s in draft.stages if (n := effective_calendar(draft, s))})
    if not names:
        return {}
    times = [iv.entered_at for iv in intervals] + [iv.exited_at for iv in intervals]
    now = datetime.now(UTC)
    start, end = (min(times), max(times)) if times else (now, now)
    return {name: pin_range(definitions[name], start, end) for name in names}


def pin_range(calendar: CalendarDef, start: datetime, end: datetime) -> PinnedCalendar:
    """``playbooks.calendars.pin`` over ``[start, end]``, however long."""
    from playbooks.calendars import PIN_YEARS, pin

    pinned: list[PinnedCalendar] = []
    year = start.year + 1  # a pin at year Y knows Y-1 .. Y+PIN_YEARS
    while True:
        pinned.append(pin(calendar, datetime(year, 7, 1, tzinfo=UTC)))
        if year + PIN_YEARS >= end.year:
            break
        year += PIN_YEARS + 2
    if len(pinned) == 1:
        return pinned[0]
    holidays: dict[Any, str] = {}
    transitions: list[tuple[int, int]] = []
    for one in pinned:
        holidays.update(one.holidays)
        transitions.extend(one.offsets)
    offsets: list[tuple[int, int]] = []
    for at, offset in sorted(transitions):
        if not offsets or offsets[-1][1] != offset:
            offsets.append((at, offset))
    return pinned[0].model_copy(
        update={
            "holidays": dict(sorted(holidays.items())),
            "offsets": offsets,
            "valid_until": pinned[-1].valid_until,
        }
    )
