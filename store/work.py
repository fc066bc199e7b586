"""Work queues read from the read model: who holds which open case and step.

"Open" means an engine case that is open, waiting on the client or paused, and, for a step,
one of its current stage that a person works on (task, approval, checklist) and that is not
finished. Every function returns ``schemas.work.WorkItem``; the rules about who may hold what
are in ``schemas.work``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.work import HOLDABLE_KINDS, WorkItem
from store.models import Case, CaseTaskRow

OPEN_CASE_STATUSES = ("open", "waiting_on_client", "paused")
OPEN_STEP_STATUSES = ("pending", "active")
LIMIT = 500


def _open_cases() -> Any:
    return and_(Case.engine == "case", Case.status.in_(OPEN_CASE_STATUSES))


def _case_query() -> Select[Any]:
    return select(Case).where(_open_cases())


def _step_query() -> Any:
    return (
        select(CaseTaskRow, Case)
        .join(Case, Case.ref == CaseTaskRow.case_ref)
        .where(
            _open_cases(),
            CaseTaskRow.stage == Case.stage,
            CaseTaskRow.element_kind.in_(HOLDABLE_KINDS),
            CaseTaskRow.status.in_(OPEN_STEP_STATUSES),
        )
    )


def _case_item(case: Case, half_approved: bool) -> WorkItem:
    return WorkItem(
        case_ref=case.ref,
        case_type=case.case_type,
        workflow_id=case.workflow_id,
        item="case",
        kind="case",
        title=f"case {case.ref}",
        stage=case.stage,
        stage_access=list(case.access_roles or []),
        assignee=case.assignee,
        assignee_team=case.assignee_team,
        assigned_at=case.assigned_at,
        opened_at=case.created_at,
        due_at=case.sla_due_at,
        sla_state=case.sla_state,
        half_approved=half_approved,
    )


def _step_item(step: CaseTaskRow, case: Case, half_approved: bool) -> WorkItem:
    return WorkItem(
        case_ref=case.ref,
        case_type=case.case_type,
        workflow_id=case.workflow_id,
        item=step.key,
        kind=step.element_kind or "task",
        title=step.title,
        stage=step.stage,
        team=step.assignee_role,
        stage_access=list(case.access_roles or []),
        roles=list(step.roles or ([step.assignee_role] if step.assignee_role else [])),
        assignee=step.assignee,
        assignee_team=step.assignee_team,
        assigned_at=step.assigned_at,
        opened_at=step.opened_at or case.updated_at,
        due_at=min((d for d in (step.due_at, case.sla_due_at) if d is not None), default=None),
        sla_state=case.sla_state,
        overdue=bool(step.overdue),
        half_approved=half_approved,
    )


async def _half_approved(session: AsyncSession, refs: Collection[str]) -> set[str]:
    """Cases among ``refs`` whose current approval has some votes but no decision yet."""
    if not refs:
        return set()
    rows = await session.execute(
        select(CaseTaskRow.case_ref, CaseTaskRow.votes)
        .join(Case, Case.ref == CaseTaskRow.case_ref)
        .where(
            CaseTaskRow.case_ref.in_(list(refs)),
            CaseTaskRow.stage == Case.stage,
            CaseTaskRow.element_kind == "approval",
            CaseTaskRow.status.in_(OPEN_STEP_STATUSES),
        )
    )
    return {ref for ref, votes in rows if votes}


async def _items(
    session: AsyncSession, case_filter: Any, step_filter: Any, *, limit: int = LIMIT
) -> list[WorkItem]:
    # soonest due first in SQL too, so a limit keeps the most urgent (least() skips NULLs)
    case_order = (Case.sla_due_at.asc().nulls_last(), Case.ref)
    step_due = func.least(CaseTaskRow.due_at, Case.sla_due_at)
    step_order = (step_due.asc().nulls_last(), Case.ref, CaseTaskRow.key)
    cases = list(
        await session.scalars(_case_query().where(case_filter).order_by(*case_order).limit(limit))
    )
    steps = list(
        (
            await session.execute(
                _step_query().where(step_filter).order_by(*step_order).limit(limit)
            )
        ).all()
    )
    refs = {c.ref for c in cases} | {case.ref for _, case in steps}
    pinned = await _half_approved(session, refs)
    items = [_case_item(c, c.ref in pinned) for c in cases]
    items += [_step_item(step, case, case.ref in pinned) for step, case in steps]
    return sorted(items, key=_by_due)


def _by_due(item: WorkItem) -> tuple[bool, str, str, str]:
    """Due first (soonest on top), then what has no due time; stable by case and item."""
    due = item.due_at.isoformat() if item.due_at is not None else ""
    return (item.due_at is None, due, item.case_ref, item.item)


async def held_by(session: AsyncSession, people: Collection[str]) -> list[WorkItem]:
    """Every open item held by one of ``people``, by due time."""
    if not people:
        return []
    names = list(people)
    return await _items(
        session,
        Case.assignee.in_(names),
        CaseTaskRow.assignee.in_(names),
        limit=LIMIT * 20,
    )


async def unassigned_for(session: AsyncSession, role: str, *, limit: int = 200) -> list[WorkItem]:
    """The team queue as ``role`` sees it: open items nobody holds that ``role`` may hold."""
    if role == "admin":
        access: Any = True
    else:
        access = or_(Case.access_roles == [], Case.access_roles.contains([role]))
    steps_for_role: Any = True
    if role not in ("admin", "case_manager"):  # managers act on every task and checklist
        steps_for_role = or_(CaseTaskRow.roles.contains([role]), CaseTaskRow.assignee_role == role)
    items = await _items(
        session,
        and_(Case.assignee.is_(None), access),
        and_(CaseTaskRow.assignee.is_(None), access, steps_for_role),
        limit=limit,
    )
    return [i for i in items if i.holdable_by(role)][:limit]


async def workflow_ids(sessions: Any, refs: Collection[str]) -> dict[str, str]:
    """Case ref -> workflow id."""
    if not refs:
        return {}
    async with sessions() as session:
        rows = await session.execute(
            select(Case.ref, Case.workflow_id).where(Case.ref.in_(list(refs)))
        )
        return {ref: wf for ref, wf in rows}
