"""The rebalancing plan: the surplus moves to the least-loaded teammate who may hold it and
has room; nothing moves twice; a half-given approval keeps its approver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.rebalance import Move, Person, TeamPolicy, plan
from schemas.work import WorkItem, may_hold, why_not

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
TEAM = [
    Person(username="ann", name="Ann", team="case_manager"),
    Person(username="ben", name="Ben", team="case_manager"),
    Person(username="cat", name="Cat", team="case_manager"),
    Person(username="rita", name="Rita", team="compliance_reviewer"),
    Person(username="olga", name="Olga", team="operator"),
]


def item(
    ref: str, holder: str, *, risk: str = "warning", due_h: float = 1, **kw: object
) -> WorkItem:
    return WorkItem(
        case_ref=ref,
        case_type="t",
        workflow_id=f"t-{ref}",
        item="case",
        kind="case",
        title=f"case {ref}",
        stage="review",
        assignee=holder,
        sla_state=risk,
        due_at=T0 + timedelta(hours=due_h),
        **kw,
    )


def apply(held: list[WorkItem], moves: list[Move]) -> list[WorkItem]:
    moved = {(m.case_ref, m.item): m.to_person for m in moves}
    return [
        i.model_copy(update={"assignee": moved.get((i.case_ref, i.item), i.assignee)}) for i in held
    ]


def test_four_at_risk_on_one_person_moves_the_surplus_once() -> None:
    held = [item(f"C{n}", "ann", due_h=n) for n in range(4)] + [item("B1", "ben", risk="on_track")]
    first = plan(TEAM, held, {"case_manager": TeamPolicy(threshold=3, auto=True)})
    # ann keeps N-1 = 2; the two most urgent go, each to whoever has least open work then
    assert [(m.case_ref, m.from_person, m.to_person) for m in first.moves] == [
        ("C0", "ann", "cat"),
        ("C1", "ann", "ben"),
    ]
    assert "ann held 4 items at risk" in first.moves[0].reason
    assert first.teams["case_manager"].over == ["ann"]
    assert "operator" not in first.teams  # operators watch: no team to rebalance
    second = plan(TEAM, apply(held, first.moves), {"case_manager": TeamPolicy(threshold=3)})
    assert second.moves == []


def test_below_the_threshold_nothing_moves() -> None:
    held = [item(f"C{n}", "ann") for n in range(2)] + [item("C9", "ann", risk="on_track")]
    assert plan(TEAM, held, {}).moves == []  # default threshold 3


def test_a_teammate_is_never_pushed_to_the_threshold() -> None:
    held = [item(f"A{n}", "ann") for n in range(5)]
    held += [item(f"B{n}", "ben") for n in range(2)] + [item(f"K{n}", "cat") for n in range(2)]
    result = plan(TEAM, held, {})
    assert result.moves == [] and result.teams["case_manager"].stuck == 3


def test_a_half_given_approval_keeps_its_approver() -> None:
    held = [item(f"C{n}", "ann", half_approved=True) for n in range(4)]
    result = plan(TEAM, held, {})
    assert result.moves == [] and result.teams["case_manager"].stuck == 2


def test_only_people_who_may_hold_the_work_receive_it() -> None:
    restricted = [item(f"C{n}", "rita", stage_access=["compliance_reviewer"]) for n in range(3)]
    assert plan(TEAM, restricted, {}).moves == []  # rita has no teammate in compliance


def test_who_may_hold_what() -> None:
    assert may_hold("case_manager", stage_access=[], element_kind="task", roles=["ops"])
    assert not may_hold("relationship_manager", stage_access=[], element_kind="task", roles=["ops"])
    assert not may_hold("operator", stage_access=[])
    assert may_hold("admin", stage_access=["x"], element_kind="approval", roles=["y"])
    assert not may_hold("case_manager", stage_access=[], element_kind="approval", roles=["cr"])
    why = why_not("ravi", "relationship_manager", stage="review", stage_access=["case_manager"])
    assert why == (
        "ravi (relationship_manager) may not act in stage review; it is restricted to: case_manager"
    )
