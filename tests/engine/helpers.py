"""Starting engine cases in tests: a case row first (as the API does), then the workflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from playbooks.registry import CaseTypeRegistry, pinned_subprocess_types
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
) -> tuple[str, WorkflowHandle[Any, Any]]:
    reg = registry()
    ct = reg.get(case_type)
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
