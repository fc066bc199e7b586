"""Starting engine cases in tests: a case row first (as the API does), then the workflow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from playbooks.registry import CaseTypeRegistry, pinned_subprocess_types
from schemas.casetype import CaseType
from schemas.client import ClientProfile
from schemas.contracts import CASE_WORKFLOW, EngineCaseInput
from schemas.snapshot import CaseSnapshot
from store.cases import insert_draft_case
from store.db import SessionFactory
from tests.conftest import new_ref
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
FIXTURE_TYPES = REPO / "tests" / "fixtures" / "case_types"


def registry() -> CaseTypeRegistry:
    return CaseTypeRegistry.load([REPO / "playbooks" / "case_types", FIXTURE_TYPES])


def profile(**overrides: Any) -> ClientProfile:
    base: dict[str, Any] = {
        "name": "Jane Smith",
        "email": "jane@example.com",
        "client_type": "individual",
        "country": "GB",
        "date_of_birth": "1985-04-12",
    }
    base.update(overrides)
    return ClientProfile.model_validate(base)


async def start(
    client: Client,
    sessions: SessionFactory,
    task_queue: str,
    case_type: str,
    *,
    data: dict[str, Any] | None = None,
    client_profile: ClientProfile | None = None,
    started: list[Any] | None = None,
    history_limit: int | None = None,
    case_type_def: CaseType | None = None,
) -> tuple[str, WorkflowHandle[Any, Any]]:
    """``case_type_def``: a changed copy of ``case_type`` (e.g. a stage's SLA in seconds)."""
    reg = registry()
    ct = case_type_def or reg.get(case_type)
    ref = new_ref(case_type[:3].upper())
    workflow_id = f"{ct.workflow_prefix or ct.name}-{ref}"
    who = client_profile or profile()
    async with sessions.begin() as s:
        await s.execute(
            insert_draft_case(
                ref=ref,
                client=who,
                requested_by="test",
                case_type=ct.name,
                case_type_version=ct.version,
                engine="case",
                data=data or {},
                workflow_id=workflow_id,
                first_stage=ct.stages[0].key,
                access_roles=list(ct.stages[0].access),
            )
        )
    subtypes = pinned_subprocess_types(reg, ct, client=who.model_dump(mode="json"), data=data or {})
    handle = await client.start_workflow(
        CASE_WORKFLOW,
        EngineCaseInput(
            case_ref=ref,
            workflow_id=workflow_id,
            case_type=ct,
            client=who,
            data=data or {},
            requested_by="test",
            subprocess_types=subtypes,
            row_exists=True,
            **({"continue_as_new_after_events": history_limit} if history_limit else {}),
        ),
        id=workflow_id,
        task_queue=task_queue,
    )
    if started is not None:
        started.append(handle)
    return ref, handle


async def snapshot(handle: WorkflowHandle[Any, Any]) -> CaseSnapshot:
    return await handle.query("state", result_type=CaseSnapshot)


async def wait_for(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[CaseSnapshot], bool],
    *,
    timeout: float = 30,
) -> CaseSnapshot:
    """Poll the state query until ``predicate`` holds (the case moves in the background)."""
    return await eventually(
        lambda: snapshot(handle),
        predicate,
        what=f"the state of {handle.id} to match",
        timeout=timeout,
    )


async def runs(client: Client, workflow_id: str) -> list[str]:
    """Run ids of the case's chain, oldest first (each continued run names the one before)."""
    latest = await client.get_workflow_handle(workflow_id).describe()
    chain = [latest.run_id]
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=chain[0])
        async for event in handle.fetch_history_events():
            attrs = event.workflow_execution_started_event_attributes
            assert event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            if not attrs.continued_execution_run_id:
                return chain
            chain.insert(0, attrs.continued_execution_run_id)
            break


async def settled(case: WorkflowHandle[Any, Any]) -> None:
    """Until the latest run is quiet: nothing in flight, no task to run, and its history the
    same length a moment later (the run may roll over just as its last message goes out; a
    command sent then would land in the new run, not the one we compare)."""

    async def length_if_quiet() -> int | None:
        described = await case.describe()
        raw = described.raw_description
        if raw.pending_activities or raw.HasField("pending_workflow_task"):
            return None
        return described.history_length

    async def stable() -> bool:
        first = await length_if_quiet()
        await asyncio.sleep(0.5)
        return first is not None and first == await length_if_quiet()

    await eventually(stable, what=f"{case.id} to settle")
