"""Opening an engine case from Python: the case types as the API loads them, the draft row,
then the workflow with its case type pinned.

Shared by the API (``POST /cases``, ``api.services.cases``) and by activities that open cases
themselves (sanctions monitoring opens a ``sanctions_alert`` case per alert), so both pin the
case type, its subprocess types and its calendars the same way. Never imported by workflow
code (it talks to Postgres and Temporal).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.settings import Settings
from playbooks.registry import (
    DEFAULT_FOLDER,
    CaseTypeRegistry,
    pinned_calendars,
    pinned_subprocess_types,
)
from schemas.calendar import PinnedCalendar
from schemas.casedata import validate_case_data
from schemas.casetype import CaseType
from schemas.client import ClientProfile
from schemas.contracts import CASE_WORKFLOW, EngineCaseInput
from schemas.enums import CaseStatus, SlaState
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case
from workflows import search_attributes as sa

ENGINE = "case"  # the cases.engine value of engine cases


def load_registry(settings: Settings) -> CaseTypeRegistry:
    """``playbooks/case_types`` plus ``CASE_TYPE_DIRS_EXTRA``, validated (raises
    ``CaseTypeError`` naming every problem)."""
    from notifications.milestones import Milestone

    return CaseTypeRegistry.load(
        [DEFAULT_FOLDER, *settings.case_type_dirs_extra],
        known_roles=settings.known_roles(),
        staff_roles=set(settings.staff_directory),  # an escalation to nobody fails here
        known_milestones={m.value for m in Milestone},
    )


def engine_workflow_id(case_type: CaseType, ref: str) -> str:
    """``<prefix or type name>-<ref>``: client onboarding keeps its ``onboarding-<ref>`` ids."""
    return f"{case_type.workflow_prefix or case_type.name}-{ref}"


def case_search_attributes(
    *, ref: str, client: ClientProfile, stage: str, case_type: str | None
) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.CASE_REF, ref),
        SearchAttributePair(sa.CASE_STAGE, stage),
        SearchAttributePair(sa.CASE_STATUS, CaseStatus.OPEN.value),
        SearchAttributePair(sa.CLIENT_TYPE, client.client_type.value),
        SearchAttributePair(sa.CLIENT_TIER, client.tier.value),
        SearchAttributePair(sa.SLA_STATE, SlaState.ON_TRACK.value),
    ]
    if case_type is not None:
        pairs.append(SearchAttributePair(sa.CASE_TYPE, case_type))
    return TypedSearchAttributes(pairs)


async def start_engine_workflow(
    temporal: Client,
    *,
    task_queue: str,
    ref: str,
    workflow_id: str,
    case_type: CaseType,
    client: ClientProfile,
    data: dict[str, Any],
    requested_by: str,
    children: dict[str, CaseType],
    calendars: dict[str, PinnedCalendar],
) -> bool:
    """Start once: an id conflict with a running case attaches to it; a closed one is kept.
    Returns False when the workflow had already run (and closed)."""
    try:
        await temporal.start_workflow(
            CASE_WORKFLOW,
            EngineCaseInput(
                case_ref=ref,
                workflow_id=workflow_id,
                case_type=case_type,
                client=client,
                data=data,
                requested_by=requested_by,
                subprocess_types=children,
                calendars=calendars,
                row_exists=True,  # the draft row: the case needs no seed
            ),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=case_search_attributes(
                ref=ref, client=client, stage=case_type.stages[0].key, case_type=case_type.name
            ),
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def open_engine_case(
    *,
    sessions: SessionFactory,
    temporal: Client,
    registry: CaseTypeRegistry,
    task_queue: str,
    case_type_name: str,
    ref: str,
    client: ClientProfile,
    data: dict[str, Any],
    requested_by: str,
    request_hash: str = "",
) -> str:
    """Open a case of ``case_type_name`` (startable or not) under ``ref``, once.

    The same steps as ``POST /cases``: a draft row, the workflow, the row marked open; each
    step idempotent, so calling again after a crash anywhere finishes the job and never opens
    a second case. Returns the workflow id. Raises ``CaseDataError`` for invalid data.
    """
    case_type = registry.get(case_type_name)
    clean = validate_case_data(case_type, data)
    workflow_id = engine_workflow_id(case_type, ref)
    first = case_type.stages[0]
    async with sessions.begin() as session:
        await session.execute(
            insert_draft_case(
                ref=ref,
                client=client,
                requested_by=requested_by,
                request_hash=request_hash,
                case_type=case_type.name,
                case_type_version=case_type.version,
                engine=ENGINE,
                data=clean,
                workflow_id=workflow_id,
                first_stage=first.key,
                access_roles=list(first.access),
            )
        )
    async with sessions() as session:
        row = await session.scalar(select(Case).where(Case.ref == ref))
        if row is None:  # pragma: no cover - inserted above or by a concurrent call
            raise RuntimeError(f"case {ref} vanished after its insert")
        status, workflow_id = row.status, row.workflow_id
    if status != CaseStatus.DRAFT.value:
        return workflow_id
    children = pinned_subprocess_types(
        registry, case_type, client=client.model_dump(mode="json"), data=clean
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await start_engine_workflow(
            temporal,
            task_queue=task_queue,
            ref=ref,
            workflow_id=workflow_id,
            case_type=case_type,
            client=client,
            data=clean,
            requested_by=requested_by,
            children=children,
            calendars=pinned_calendars(registry, [case_type, *children.values()], _now()),
        )
    async with sessions.begin() as session:
        await session.execute(
            update(Case)
            .where(Case.ref == ref, Case.status == CaseStatus.DRAFT.value)
            .values(status=CaseStatus.OPEN.value)
        )
    return workflow_id


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "ENGINE",
    "case_search_attributes",
    "engine_workflow_id",
    "load_registry",
    "open_engine_case",
    "start_engine_workflow",
]
