"""What-if over the fixture history (``helpers``): budgets, calendars, routing, and what the
history cannot answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics.whatif import (
    DraftCheck,
    StageChange,
    WhatIfReport,
    check_draft,
    evaluate,
    pin_calendars,
    whatif,
)
from playbooks.registry import CaseTypeRegistry
from schemas.casetype import CaseType, Condition
from tests.whatif.helpers import (
    Raw,
    cut_compliance,
    history,
    office_hours_compliance,
    security_for_premium,
    stage,
    unchanged,
    write_draft,
)

H = 3600.0


def checked(
    tmp_path: Path, registry: CaseTypeRegistry, mutate: Callable[[Raw], None]
) -> DraftCheck:
    path = write_draft(tmp_path, mutate)
    check = check_draft(path, registry, expected_name="client_onboarding")
    assert check.case_type is not None, check.problems
    return check


def run(
    tmp_path: Path,
    registry: CaseTypeRegistry,
    mutate: Callable[[Raw], None],
    *,
    with_current: bool = True,
) -> WhatIfReport:
    check = checked(tmp_path, registry, mutate)
    assert check.case_type is not None
    intervals = history()
    calendars = pin_calendars(check.case_type, check.calendars, intervals)
    current = registry.get("client_onboarding") if with_current else None
    return whatif(intervals, check.case_type, calendars, current=current)


def refs(report: WhatIfReport) -> list[str]:
    return [c.case_ref for c in report.changed]


def totals(report: WhatIfReport, key: str) -> tuple[int, int]:
    t = next(t for t in report.stages if t.stage == key)
    return t.breaches_before, t.breaches_after


# ----------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("with_current", [True, False], ids=["against-current", "draft-only"])
def test_cutting_a_budget_lists_exactly_the_cases_between_the_old_and_the_new(
    tmp_path: Path, registry: CaseTypeRegistry, with_current: bool
) -> None:
    report = run(tmp_path, registry, cut_compliance, with_current=with_current)

    # derived from the fixture itself: compliance intervals of more than 4h and at most 8h
    between = sorted(
        {
            iv.case_ref
            for iv in history()
            if iv.stage == "compliance_review" and 4 * H < iv.seconds <= 8 * H
        }
    )
    assert between == ["WI-02", "WI-03", "WI-06", "WI-08"]
    assert refs(report) == between
    assert report.cases == 14 and report.intervals == 82
    assert report.cases_changed == 4
    assert report.cases_sla_changed == 4 and report.cases_route_changed == 0
    assert report.intervals_sla_changed == 4
    for case in report.changed:
        assert len(case.changes) == 1
        change = case.changes[0]
        assert (change.stage, change.kind, change.before, change.after) == (
            "compliance_review",
            "sla",
            "met",
            "breached",
        )
        assert change.budget_seconds == 4 * H
        assert case.route_after == case.route_before  # budgets do not move anyone
    worked = {c.case_ref: c.changes[0].working_seconds for c in report.changed}
    assert worked == {"WI-02": 5 * H, "WI-03": 7 * H + 59 * 60, "WI-06": 6 * H, "WI-08": 5 * H}
    # WI-08 went through compliance twice: only the 5h visit flips, not the 1h one
    (wi08,) = (c for c in report.changed if c.case_ref == "WI-08")
    assert wi08.changes[0].entered_at is not None and wi08.changes[0].entered_at.hour == 10
    assert totals(report, "compliance_review") == (5, 9)
    for key in ("document_collection", "security_review", "account_setup", "final_review"):
        before, after = totals(report, key)
        assert before == after == 0
    compliance = next(t for t in report.stages if t.stage == "compliance_review")
    assert (compliance.newly_breached, compliance.no_longer_breached) == (4, 0)
    assert compliance.sla_after == 4 * H
    if with_current:
        assert compliance.sla_before == 8 * H


def test_a_budget_exactly_used_up_is_not_a_breach(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    """WI-05's compliance review took exactly 4h: not more than a 4h budget."""
    report = run(tmp_path, registry, cut_compliance)
    assert "WI-05" not in refs(report)


@pytest.mark.parametrize("with_current", [True, False], ids=["against-current", "draft-only"])
def test_an_unchanged_draft_changes_nothing(
    tmp_path: Path, registry: CaseTypeRegistry, with_current: bool
) -> None:
    report = run(tmp_path, registry, unchanged, with_current=with_current)
    assert report.changed == []
    assert report.cases_not_evaluable == 0
    for t in report.stages:
        assert t.breaches_before == t.breaches_after
        assert t.intervals == t.intervals_after


def test_an_unchanged_rule_keeps_what_was_recorded(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    """Against the case type in service, a stage whose budget and calendar the draft leaves
    alone keeps its recorded outcome, even where the timings alone would say otherwise (time
    the clock stood still, paused or waiting on the client, is not in the history)."""
    intervals = history()
    paused = [
        replace(iv, breached=False)
        if (iv.case_ref, iv.stage) == ("WI-12", "compliance_review")
        else iv
        for iv in intervals
    ]  # 9h in compliance, not breached: the case was paused for two of them
    check = checked(tmp_path, registry, unchanged)
    assert check.case_type is not None
    current = registry.get("client_onboarding")
    kept = whatif(paused, check.case_type, {}, current=current)
    assert kept.changed == []
    afresh = whatif(paused, check.case_type, {})  # nothing to compare with: recomputed
    assert refs(afresh) == ["WI-12"]
    assert any("stood still" in note for note in afresh.notes)


# ----------------------------------------------------------------------------- calendars
@pytest.mark.parametrize("with_current", [True, False], ids=["against-current", "draft-only"])
def test_office_hours_instead_of_24_7(
    tmp_path: Path, registry: CaseTypeRegistry, with_current: bool
) -> None:
    report = run(tmp_path, registry, office_hours_compliance, with_current=with_current)
    assert refs(report) == ["WI-04", "WI-11", "WI-13", "WI-14"]
    worked = {}
    for case in report.changed:
        (change,) = case.changes
        assert (change.stage, change.before, change.after) == (
            "compliance_review",
            "breached",
            "met",
        )
        assert change.calendar == "uk_business_hours"
        worked[case.case_ref] = change.working_seconds
    assert worked == {
        "WI-04": 7.5 * H,  # Mon 10:00-19:00: the office closes at 17:30
        "WI-11": 2.5 * H,  # Fri 16:00-17:30 and Mon 09:00-10:00: the weekend does not count
        "WI-13": 3.5 * H,  # Thu 16:00-17:30 BST, Good Friday and Easter Monday closed, Tue 2h
        "WI-14": 0.0,  # overnight
    }
    assert totals(report, "compliance_review") == (5, 1)  # WI-12: 8h30m in the office, still
    compliance = next(t for t in report.stages if t.stage == "compliance_review")
    assert compliance.calendar_after == "uk_business_hours"
    assert (compliance.newly_breached, compliance.no_longer_breached) == (0, 4)


def test_office_hours_for_the_whole_case_type(tmp_path: Path, registry: CaseTypeRegistry) -> None:
    """Every stage counts office hours: only compliance had breaches, office time is never
    more than wall time, so the same four cases change."""

    def everywhere(raw: Raw) -> None:
        raw["calendar"] = "uk_business_hours"

    report = run(tmp_path, registry, everywhere)
    assert refs(report) == ["WI-04", "WI-11", "WI-13", "WI-14"]
    assert all(t.calendar_after == "uk_business_hours" for t in report.stages)


# ----------------------------------------------------------------------------- routing
@pytest.mark.parametrize("with_current", [True, False], ids=["against-current", "draft-only"])
def test_security_review_for_premium_instead_of_enterprise(
    tmp_path: Path, registry: CaseTypeRegistry, with_current: bool
) -> None:
    report = run(tmp_path, registry, security_for_premium, with_current=with_current)
    changes = {c.case_ref: [(s.kind, s.stage) for s in c.changes] for c in report.changed}
    assert changes == {
        "WI-03": [("enters", "security_review")],  # business premium
        "WI-04": [("skips", "security_review")],  # enterprise standard
        "WI-05": [("enters", "security_review")],  # individual premium
        "WI-10": [("enters", "security_review")],  # business premium
    }
    # WI-07 (enterprise premium) keeps it; WI-09 (premium) ended at compliance, so it would
    # never have got there: no claim either way
    assert report.cases_route_changed == 4 and report.cases_sla_changed == 0
    assert report.cases_not_evaluable == 0
    (wi04,) = (c for c in report.changed if c.case_ref == "WI-04")
    assert "security_review" in wi04.route_before
    assert wi04.route_after is not None and "security_review" not in wi04.route_after
    (wi05,) = (c for c in report.changed if c.case_ref == "WI-05")
    assert wi05.route_after is not None
    assert wi05.route_after[2:4] == ["compliance_review", "security_review"]
    security = next(t for t in report.stages if t.stage == "security_review")
    assert (security.cases_entering, security.cases_skipping) == (3, 1)
    assert (security.intervals, security.intervals_after) == (2, 1)  # WI-04's no longer runs
    assert [c.describe() for c in wi04.changes] == ["would skip security_review"]
    (wi03,) = (c for c in report.changed if c.case_ref == "WI-03")
    assert [c.describe() for c in wi03.changes] == ["would newly enter security_review"]


def test_a_stage_the_draft_removes_is_skipped(tmp_path: Path, registry: CaseTypeRegistry) -> None:
    def without_security(raw: Raw) -> None:
        raw["stages"] = [s for s in raw["stages"] if s["key"] != "security_review"]

    report = run(tmp_path, registry, without_security)
    assert refs(report) == ["WI-04", "WI-07"]
    for case in report.changed:
        assert [(s.kind, s.stage, s.after) for s in case.changes] == [
            ("skips", "security_review", "removed")
        ]
    security = next(t for t in report.stages if t.stage == "security_review")
    assert not security.in_draft
    assert (security.intervals, security.intervals_after, security.cases_skipping) == (2, 0, 2)


def test_a_stage_the_draft_adds_is_entered_by_cases_that_passed_that_point(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    """A new stage after compliance for international clients: WI-03 (FR) and WI-07 (DE) went
    past compliance; WI-06 (US) was cancelled in compliance and never would have got there."""

    def sanctions_desk(raw: Raw) -> None:
        new = {
            "key": "international_desk",
            "title": "International desk",
            "owner_role": "compliance_reviewer",
            "sla": "4h",
            "when": {"field": "international", "eq": True},
        }
        keys = [s["key"] for s in raw["stages"]]
        raw["stages"].insert(keys.index("compliance_review") + 1, new)

    report = run(tmp_path, registry, sanctions_desk)
    assert refs(report) == ["WI-03", "WI-07"]
    for case in report.changed:
        assert [(s.kind, s.stage) for s in case.changes] == [("enters", "international_desk")]


# ----------------------------------------------------------------------------- unknowable
def test_a_condition_on_an_automation_output_is_counted_not_guessed(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    def by_risk(raw: Raw) -> None:
        stage(raw, "security_review")["when"] = {"field": "screening.risk_level", "eq": "high"}

    report = run(tmp_path, registry, by_risk)
    assert report.changed == []  # no route is guessed
    # every case that reached security review's place: all but WI-06 and WI-09
    assert report.cases_not_evaluable == 12
    assert [(n.stage, n.paths, n.cases) for n in report.not_evaluable] == [
        ("security_review", ["screening.risk_level"], 12)
    ]
    assert any("not evaluable" in note for note in report.notes)
    security = next(t for t in report.stages if t.stage == "security_review")
    assert security.intervals_after == 2  # recorded visits are still judged on time


def test_known_parts_of_a_condition_settle_what_they_can(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    """``all`` of premium and a screening result: not premium settles it (False) without the
    screening; premium leaves it open."""

    def premium_and_risky(raw: Raw) -> None:
        stage(raw, "security_review")["when"] = {
            "all": [
                {"field": "client.tier", "eq": "premium"},
                {"field": "screening.risk_level", "eq": "high"},
            ]
        }

    report = run(tmp_path, registry, premium_and_risky)
    changes = {c.case_ref: [(s.kind, s.stage) for s in c.changes] for c in report.changed}
    assert changes == {"WI-04": [("skips", "security_review")]}  # enterprise, but standard
    # premium and past compliance: WI-03, WI-05, WI-07, WI-10
    assert report.cases_not_evaluable == 4

    def enterprise_or_risky(raw: Raw) -> None:
        stage(raw, "security_review")["when"] = {
            "any": [
                {"field": "client.client_type", "eq": "enterprise"},
                {"field": "screening.risk_level", "eq": "high"},
            ]
        }

    folder = tmp_path / "any"
    folder.mkdir()
    report = run(folder, registry, enterprise_or_risky)
    assert report.changed == []
    assert report.cases_not_evaluable == 10  # the two enterprise cases are settled


def test_an_unknowable_condition_the_draft_does_not_change_keeps_the_recorded_route(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    """In service, security review runs on a screening result; the draft only cuts a budget:
    the recorded routes stand, nothing is unknowable."""

    def by_risk(raw: Raw) -> None:
        stage(raw, "security_review")["when"] = {"field": "screening.risk_level", "eq": "high"}

    def by_risk_and_cut(raw: Raw) -> None:
        by_risk(raw)
        cut_compliance(raw)

    current = checked(tmp_path, registry, by_risk).case_type
    folder = tmp_path / "draft"
    folder.mkdir()
    draft = checked(folder, registry, by_risk_and_cut).case_type
    assert current is not None and draft is not None
    report = whatif(history(), draft, {}, current=current)
    assert report.cases_not_evaluable == 0
    assert refs(report) == ["WI-02", "WI-03", "WI-06", "WI-08"]


def test_three_valued_conditions() -> None:
    fields = {
        "client": {"client_type": "business", "tier": "premium", "country": "FR"},
        "international": True,
    }

    def c(raw: Any) -> Condition:
        return Condition.model_validate(raw)

    assert evaluate(None, fields) is True
    assert evaluate(c({"field": "client.tier", "eq": "premium"}), fields) is True
    assert evaluate(c({"field": "screening.decision", "eq": "clear"}), fields) is None
    assert evaluate(c({"not": {"field": "screening.decision", "eq": "clear"}}), fields) is None
    assert evaluate(c({"field": "client.name", "exists": True}), fields) is None
    callback = {"field": "client.contact_preferences.callback_stages", "contains": "x"}
    assert evaluate(c(callback), fields) is None
    both = {"all": [{"field": "international", "eq": False}, {"field": "order_value", "gt": 1}]}
    assert evaluate(c(both), fields) is False
    either = {"any": [{"field": "international", "eq": True}, {"field": "order_value", "gt": 1}]}
    assert evaluate(c(either), fields) is True


# ----------------------------------------------------------------------------- the rest
def test_other_case_types_are_left_out(tmp_path: Path, registry: CaseTypeRegistry) -> None:
    intervals = history()
    other = replace(intervals[0], case_type="order_approval", case_ref="OA-1")
    draft = checked(tmp_path, registry, unchanged).case_type
    assert draft is not None
    report = whatif([*intervals, other], draft, {}, current=registry.get("client_onboarding"))
    assert report.other_intervals == 1 and report.cases == 14
    empty = whatif([other], draft, {})
    assert empty.cases == 0 and empty.changed == [] and empty.notes


def test_a_calendar_the_draft_names_must_be_given(
    tmp_path: Path, registry: CaseTypeRegistry
) -> None:
    draft = checked(tmp_path, registry, office_hours_compliance).case_type
    assert draft is not None
    with pytest.raises(KeyError, match="uk_business_hours"):
        whatif(history(), draft, {})


def test_the_report_as_json(tmp_path: Path, registry: CaseTypeRegistry) -> None:
    report = run(tmp_path, registry, cut_compliance)
    data = json.loads(json.dumps(report.as_dict(limit=2)))
    assert data["changed_total"] == 4
    assert [c["case_ref"] for c in data["changed"]] == ["WI-02", "WI-03"]
    first = data["changed"][0]["changes"][0]
    assert first["description"] == "compliance_review: met → breached (5h of 4h, 24/7)"
    assert first["entered_at"] == "2026-03-02T10:00:00+00:00"
    assert {s["stage"] for s in data["stages"]} >= {"compliance_review", "security_review"}
    assert data["first_created"].startswith("2026-03-02")


def test_descriptions() -> None:
    sla = StageChange(
        "compliance_review",
        "sla",
        "breached",
        "met",
        working_seconds=2.5 * H,
        budget_seconds=8 * H,
        calendar="uk_business_hours",
    )
    assert sla.describe() == "compliance_review: breached → met (2h 30m of 8h, uk_business_hours)"
    removed = StageChange("security_review", "skips", "entered", "removed")
    assert removed.describe() == "would skip security_review (not in the draft)"


def test_draft_type_is_a_case_type(tmp_path: Path, registry: CaseTypeRegistry) -> None:
    draft = checked(tmp_path, registry, cut_compliance).case_type
    assert isinstance(draft, CaseType)
    assert draft.stage("compliance_review").sla == timedelta(hours=4)
