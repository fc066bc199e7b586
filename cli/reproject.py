"""``onboarding reproject [REF ...] [--all]``: rebuild engine cases' read-model rows from
their workflows.

Temporal is the source of truth for where a case is; Postgres holds what people query. When a
projection was dead-lettered (a data error), or the read model was lost, this asks each case's
workflow for its state and writes the case row, stage intervals, pauses and elements again, at
the version the workflow last wrote (so the workflow's next write still wins). Audit events,
and the elements of earlier stage visits, are not in the workflow's state: they are left as
they are. Dead letters of a rebuilt case are
marked resolved.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from temporalio.client import Client
from temporalio.service import RPCError

from activities.engine_store import EngineStoreActivities
from schemas.client import ClientProfile
from schemas.contracts import CASE_WORKFLOW, CasePatchV2, EngineProjection, EngineSeed
from schemas.projection import AuditEvent
from schemas.snapshot import CaseSnapshot
from store.db import SessionFactory
from store.models import Case, ProjectionDeadLetter

ENGINE = "case"


@dataclass
class ReprojectReport:
    rebuilt: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def projection_from(snapshot: CaseSnapshot, workflow_id: str) -> EngineProjection:
    """The read-model rows a snapshot implies, at the version the workflow last wrote."""
    profile = ClientProfile.model_validate(snapshot.fields["client"])
    data = {
        k: v
        for k, v in snapshot.fields.items()
        if k not in ("client", "international") and not isinstance(v, dict)
    }
    sla_state = snapshot.sla.state if snapshot.sla else None
    closed = snapshot.status in ("closed", "cancelled")
    columns = CasePatchV2(
        status=snapshot.status,
        stage=snapshot.stage,
        sla_state=sla_state,
        priority=snapshot.priority,
        flags=snapshot.flags,
        ever_paused=bool(snapshot.pauses),
        access_roles=snapshot.access,
        resolution=snapshot.resolution,
        closure_reason=snapshot.closure_reason,
        assignee=snapshot.assignee,
        assignee_team=snapshot.assignee_team,
        assigned_at=snapshot.assigned_at,
        sla_due_at=snapshot.sla.due_at if snapshot.sla else None,
        eta_at=snapshot.eta.p50 if snapshot.eta else None,
        eta_p10_at=snapshot.eta.p10 if snapshot.eta else None,
        eta_p90_at=snapshot.eta.p90 if snapshot.eta else None,
        eta_basis=snapshot.eta.basis if snapshot.eta else None,
        clear=[
            k
            for k, v in (
                ("resolution", snapshot.resolution),
                ("sla_state", sla_state),
                ("assignee", snapshot.assignee),
                ("assignee_team", snapshot.assignee_team),
                ("assigned_at", snapshot.assigned_at),
                ("sla_due_at", snapshot.sla.due_at if snapshot.sla else None),
            )
            if v is None
        ],
    )
    if closed and snapshot.history:
        columns.closed_at = snapshot.history[-1].exited_at
    return EngineProjection(
        case_ref=snapshot.case_ref,
        seed=EngineSeed(
            client=profile,
            case_type=snapshot.case_type,
            case_type_version=snapshot.case_type_version,
            workflow_id=workflow_id,
            requested_by=snapshot.requested_by or "reproject",
            data=data,
            first_stage=snapshot.stages[0].key if snapshot.stages else snapshot.stage,
        ),
        version=snapshot.projection_version,
        rebuild=True,
        at=datetime.now(UTC),
        case=columns,
        visits=snapshot.history,
        pauses=snapshot.pauses,
        elements=snapshot.elements,
        events=[
            AuditEvent(
                key=f"read-model-rebuilt-{snapshot.projection_version}",
                kind="read_model_rebuilt",
                actor="reproject",
                detail={"version": snapshot.projection_version},
            )
        ],
    )


async def reproject(
    *, temporal: Client, sessions: SessionFactory, refs: list[str], all_cases: bool = False
) -> ReprojectReport:
    """Rebuild the named cases (or every engine case Temporal knows, with ``all_cases``)."""
    report = ReprojectReport()
    targets: dict[str, str] = {}  # ref -> workflow id
    async with sessions() as session:
        if refs:
            rows = (
                await session.execute(
                    select(Case.ref, Case.workflow_id, Case.engine).where(Case.ref.in_(refs))
                )
            ).all()
            for ref, workflow_id, engine in rows:
                if engine != ENGINE:
                    report.skipped[ref] = "a case of the frozen workflow: not rebuilt"
                else:
                    targets[ref] = workflow_id
            for ref in refs:
                if ref not in targets and ref not in report.skipped:
                    report.skipped[ref] = "no such case in the read model"
    if all_cases:
        async for wf in temporal.list_workflows(f"WorkflowType = '{CASE_WORKFLOW}'"):
            ref = wf.id.split("-", 1)[1] if "-" in wf.id else wf.id
            targets.setdefault(ref, wf.id)
    store = EngineStoreActivities(sessions, None, None)
    for ref, workflow_id in sorted(targets.items()):
        try:
            snapshot = await temporal.get_workflow_handle(workflow_id).query(
                "state", result_type=CaseSnapshot
            )
        except RPCError as e:
            report.failed[ref] = f"workflow not readable: {e.message}"
            continue
        result = await store.apply(projection_from(snapshot, workflow_id))
        if result.dead_lettered:
            report.failed[ref] = "the rebuilt rows were refused too (see projection_dead_letters)"
            continue
        async with sessions.begin() as session:
            await session.execute(
                update(ProjectionDeadLetter)
                .where(
                    ProjectionDeadLetter.case_ref == snapshot.case_ref,
                    ProjectionDeadLetter.resolved_at.is_(None),
                )
                .values(resolved_at=datetime.now(UTC))
            )
        report.rebuilt.append(snapshot.case_ref)
    return report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproject",
        help="rebuild engine cases' read-model rows from their workflows",
        description=__doc__,
    )
    parser.add_argument("refs", nargs="*", metavar="REF", help="case references")
    parser.add_argument("--all", action="store_true", help="every engine case Temporal knows")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.refs and not args.all:
        print("name at least one case reference, or --all")
        return 2
    return asyncio.run(_main(args.refs, args.all))


async def _main(refs: list[str], all_cases: bool) -> int:
    from core.database import resolve_database_url
    from core.settings import get_settings
    from core.temporal import connect
    from store.db import make_engine, make_session_factory

    settings = get_settings()
    url, _server = resolve_database_url(settings)
    engine = make_engine(url)
    try:
        temporal = await connect(settings)
        report = await reproject(
            temporal=temporal, sessions=make_session_factory(engine), refs=refs, all_cases=all_cases
        )
    finally:
        await engine.dispose()
    for ref in report.rebuilt:
        print(f"rebuilt  {ref}")
    for ref, why in {**report.skipped, **report.failed}.items():
        print(f"skipped  {ref}: {why}")
    print(
        f"{len(report.rebuilt)} rebuilt, {len(report.failed)} failed, {len(report.skipped)} skipped"
    )
    return 1 if report.failed else 0
