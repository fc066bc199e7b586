"""What the console and the portal need from a case's type, beside its ``CaseSnapshot``.

The snapshot says where a case is; a few things the pages show live only in the case type the
case pinned when it opened: callback outcomes, checklist items, which elements are optional,
the document checklist, closure codes, the ``when`` of a stage. ``pinned_case_type`` finds that
case type: the registry's when its version is the one the case pinned (the usual case), else
the case's own workflow input (the first event of its history, read once and cached).

``client_update`` sends a client's command (proposal answer, message, feedback) to an engine
case as actor ``client`` with role ``client``: the portal's only credential is its link, so
there is no staff ``Caller`` to send it as.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.services import engine as eng
from playbooks.registry import CaseTypeRegistry, UnknownCaseType
from schemas.casetype import CaseType, Condition, DocumentsElement, Element, StageDef
from schemas.contracts import EngineCaseInput
from schemas.documents import DocumentRequirement
from schemas.engine_commands import CommandResult
from schemas.snapshot import CaseSnapshot, StagePlan

log = logging.getLogger(__name__)

ONBOARDING = "client_onboarding"
CLIENT_ACTOR = "client"
CLIENT_ROLE = "client"
_CACHE_SIZE = 512
_pinned: OrderedDict[tuple[str, str], CaseType] = OrderedDict()


def current_case_type(registry: CaseTypeRegistry | None, name: str | None) -> CaseType | None:
    """The registry's (current file's) case type called ``name``, if any."""
    if registry is None:
        return None
    try:
        return registry.get(name or ONBOARDING)
    except UnknownCaseType:
        return None


async def pinned_case_type(
    *,
    registry: CaseTypeRegistry | None,
    temporal: Client,
    workflow_id: str,
    engine: str,
    name: str | None,
    version: str | None,
) -> CaseType | None:
    """The case type the case opened with (see the module doc). A frozen onboarding case has no
    pinned case type: the registry's ``client_onboarding`` stands in for wording and the
    document checklist. None when nothing fits (the pages then show less, never fail)."""
    current = current_case_type(registry, name)
    if engine != eng.ENGINE or version is None:
        return current
    if current is not None and current.version == version:
        return current
    key = (workflow_id, version)
    if key in _pinned:
        _pinned.move_to_end(key)
        return _pinned[key]
    try:
        handle = temporal.get_workflow_handle(workflow_id)
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            [inp] = await temporal.data_converter.decode(
                list(started.input.payloads), [EngineCaseInput]
            )
            assert isinstance(inp, EngineCaseInput)
            _pinned[key] = inp.case_type
            while len(_pinned) > _CACHE_SIZE:
                _pinned.popitem(last=False)
            return inp.case_type
    except Exception as e:  # best effort: the page shows the snapshot without the extras
        log.warning("pinned case type unavailable wf=%s error=%s", workflow_id, type(e).__name__)
    return current


def element_specs(case_type: CaseType | None) -> dict[str, Element]:
    """Every element of the case type, by key."""
    if case_type is None:
        return {}
    return {e.key: e for s in case_type.stages for e in s.elements}


def stage_def(case_type: CaseType | None, key: str) -> StageDef | None:
    if case_type is None:
        return None
    for stage in case_type.stages:
        if stage.key == key:
            return stage
    return None


def humanise(key: str | None) -> str:
    return (key or "—").replace("_", " ").capitalize()


def stage_plan(snap: CaseSnapshot, case_type: CaseType | None) -> list[StagePlan]:
    """The snapshot's pinned stages, with titles and client wording filled in from the case type
    where the snapshot has none (a frozen case's adapted snapshot)."""
    plans = []
    for plan in snap.stages:
        spec = stage_def(case_type, plan.key)
        changes: dict[str, Any] = {}
        if spec is not None and plan.client_status is None:
            changes["client_status"] = spec.client_status
        if spec is not None and (not plan.title or plan.title == humanise(plan.key)):
            changes["title"] = spec.title
        plans.append(plan.model_copy(update=changes) if changes else plan)
    return plans


def plan_from_case_type(case_type: CaseType) -> list[StagePlan]:
    """A stage plan from a case type (a case with no workflow to ask)."""
    return [
        StagePlan(
            key=s.key,
            title=s.title,
            client_status=s.client_status,
            owner_role=s.owner_role,
            sla_seconds=s.sla.total_seconds() if s.sla else None,
            access=list(s.access),
        )
        for s in case_type.stages
    ]


def _lookup(fields: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def may_hold(condition: Condition | None, fields: dict[str, Any]) -> bool:
    """Whether a stage's ``when`` may hold for these fields: False only when it plainly fails
    on a field the case has. Used to leave routed-out stages off a progress bar; the engine
    itself decides (``schemas.conditions``), this never moves a case."""
    if condition is None:
        return True
    if condition.all_ is not None:
        return all(may_hold(c, fields) for c in condition.all_)
    if condition.any_ is not None:
        return any(may_hold(c, fields) for c in condition.any_)
    if condition.not_ is not None:
        return True  # unknown without the full evaluator: keep the stage
    assert condition.field is not None
    found, value = _lookup(fields, condition.field)
    if not found or value is None:
        return True  # not known yet (an automation may write it later)
    if condition.eq is not None:
        return bool(value == condition.eq)
    if condition.ne is not None:
        return bool(value != condition.ne)
    if condition.in_ is not None:
        return value in condition.in_
    if condition.not_in is not None:
        return value not in condition.not_in
    return True


def routed_plan(
    plans: list[StagePlan],
    case_type: CaseType | None,
    *,
    fields: dict[str, Any],
    visited: Iterable[str],
    current: str,
) -> list[StagePlan]:
    """The stages this case goes through: those it visited, the current one, and those whose
    ``when`` may hold (a stage routed out for this client is left off the progress bar)."""
    seen = set(visited) | {current}
    kept = []
    for plan in plans:
        spec = stage_def(case_type, plan.key)
        if plan.key in seen or spec is None or may_hold(spec.when, fields):
            kept.append(plan)
    return kept


def document_requirements(
    case_type: CaseType | None, client_type: str, *, element: str | None = None
) -> list[DocumentRequirement]:
    """The checklist of a documents element for this client type (the first documents
    element when ``element`` is not given)."""
    for spec in element_specs(case_type).values():
        if isinstance(spec, DocumentsElement) and (element is None or spec.key == element):
            return list(spec.checklists.get(client_type) or spec.checklists.get("default") or [])
    return []


def documents_stages(case_type: CaseType | None) -> set[str]:
    """Stages that hold a documents element."""
    if case_type is None:
        return set()
    return {s.key for s in case_type.stages if any(e.kind == "documents" for e in s.elements)}


async def client_update(
    *, session: AsyncSession, temporal: Client, ref: str, name: str, arg: BaseModel
) -> CommandResult:
    """Send the client's update ``name`` to engine case ``ref``: 404 unknown, 409 closed or a
    case of the frozen workflow, and the workflow's refusal as 409/403/422 (HTTPException)."""
    row = await eng.load_case(session=session, ref=ref, caller=None)
    eng.require_commandable(row)
    if not row.is_engine:
        raise eng.not_for_frozen(row, f"'{name}' command")
    handle = temporal.get_workflow_handle(row.workflow_id)
    async with eng.temporal_errors():
        return await handle.execute_update(name, arg, result_type=CommandResult)
