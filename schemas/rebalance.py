"""Workload rebalancing, planned as a pure function of who holds what.

A person who holds ``threshold`` (N) or more items at risk of breach has a surplus: the
items beyond N - 1. Each surplus item, the most urgent first, moves to the least-loaded
teammate (same role: same team) who may hold it and stays below N at risk once it arrives.
After a run nobody on the team is at or over N where a teammate had room, so a second run
over the same work moves nothing. Items rebalancing must leave alone (a case whose approval
is half given keeps its approver) count towards their holder's load but never move.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from schemas.work import NON_STAFF, WorkItem

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


class Person(BaseModel):
    username: str
    name: str
    team: str = Field(description="Their role")


class TeamPolicy(BaseModel):
    threshold: int = Field(default=3, ge=1)
    auto: bool = False


class Move(BaseModel):
    case_ref: str
    workflow_id: str
    item: str
    title: str
    team: str
    from_person: str
    to_person: str
    reason: str


class TeamSummary(BaseModel):
    threshold: int
    auto: bool
    over: list[str] = Field(default_factory=list, description="People at or over the threshold")
    moves: int = 0
    stuck: int = Field(default=0, description="Surplus items no teammate had room for")


class RebalancePlan(BaseModel):
    moves: list[Move] = Field(default_factory=list)
    teams: dict[str, TeamSummary] = Field(default_factory=dict)


def plan(
    people: Iterable[Person],
    held: Iterable[WorkItem],
    policies: Mapping[str, TeamPolicy],
) -> RebalancePlan:
    """The moves that bring every person below their team's threshold, where teammates
    have room. ``held`` is every open item held by someone."""
    members: dict[str, list[Person]] = defaultdict(list)
    for person in people:
        if person.team != "admin" and person.team not in NON_STAFF:
            members[person.team].append(person)  # admins pass every check; operators watch
    items: dict[str, list[WorkItem]] = defaultdict(list)
    for item in held:
        if item.assignee is not None:
            items[item.assignee].append(item)
    load = {p: len(v) for p, v in items.items()}
    risk = {p: sum(i.at_risk for i in v) for p, v in items.items()}
    result = RebalancePlan()
    for team in sorted(members):
        policy = policies.get(team) or TeamPolicy()
        summary = TeamSummary(threshold=policy.threshold, auto=policy.auto)
        result.teams[team] = summary
        crew = sorted(members[team], key=lambda p: p.username)
        for person in sorted(crew, key=lambda p: (-risk.get(p.username, 0), p.username)):
            me = person.username
            if risk.get(me, 0) < policy.threshold:
                continue
            summary.over.append(me)
            holding = risk[me]
            surplus = holding - (policy.threshold - 1)
            movable = sorted(
                (i for i in items[me] if i.at_risk and not i.pinned),
                key=lambda i: (i.due_at or FAR_FUTURE, i.case_ref, i.item),
            )
            for item in movable:
                if surplus == 0:
                    break
                room = [
                    p
                    for p in crew
                    if p.username != me
                    and item.holdable_by(p.team)
                    and risk.get(p.username, 0) + 1 < policy.threshold
                ]
                if not room:
                    continue
                to = min(
                    room,
                    key=lambda p: (load.get(p.username, 0), risk.get(p.username, 0), p.username),
                ).username
                result.moves.append(
                    Move(
                        case_ref=item.case_ref,
                        workflow_id=item.workflow_id,
                        item=item.item,
                        title=item.title,
                        team=team,
                        from_person=me,
                        to_person=to,
                        reason=(
                            f"rebalancing: {me} held {holding} items at risk of breach "
                            f"(threshold {policy.threshold}); {to} had the fewest open items"
                        ),
                    )
                )
                for who, step in ((me, -1), (to, 1)):
                    load[who] = load.get(who, 0) + step
                    risk[who] = risk.get(who, 0) + step
                surplus -= 1
                summary.moves += 1
            summary.stuck += surplus
    return result
