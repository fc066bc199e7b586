"""Record the engine's (``CaseWorkflow``) histories that ``tests/workflows/test_replay.py``
replays, as ``case-<generation>-<scenario>.json``.

Same rule as ``record.py``: re-record only when the current behaviour should become the new
baseline; a replay failure means running cases would break, so a change to the workflow goes
behind ``workflow.patched`` instead, and the older generation's files stay.

    .venv/bin/python -m tests.histories.record_engine [SCENARIO ...]

Each scenario runs on the time-skipping server against a throwaway Postgres.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from schemas.engine_commands import (
    AssignWork,
    CancelCaseCmd,
    ClientMessage,
    CommandResult,
    CompleteTaskCmd,
    Decide,
    Feedback,
    PauseCase,
    ProposalResponse,
    ResumeCase,
    SendBackCmd,
    WaiveDocuments,
)
from schemas.snapshot import CaseSnapshot
from store.db import SessionFactory, make_engine, make_session_factory
from store.embedded import start_embedded_postgres
from store.migrate import upgrade_head
from tests.conftest import register_search_attributes, running_worker, venv_binary
from tests.engine.helpers import profile, runs, settled, start, wait_for

HERE = Path(__file__).resolve().parent
GENERATION = "case-v9"  # bump with each workflow.patched(...) generation of CaseWorkflow
# case-v1: the engine as first shipped. case-v2: "sla-due-at-column" (the read model's case
# row carries the SLA deadline) and work queues (the ``assign`` update). case-v3:
# "client-reply-notice" (a client message tells the case's owner). case-v4: "eta-estimate"
# (the estimate_eta activity at open and at each stage). case-v5: "holder-sla-notices" (SLA
# alerts reach the person holding the case too). case-v6: "continue-as-new" (a long history
# rolls over to a new run carrying the case; both runs are saved, -run1 and -run2). case-v7:
# "decision-fields" (an approval's or a task's outcome is written to fields["decisions"]).
# case-v8: "eta-while-waiting" (a stage's ETA is asked while the case waits, SLA timers armed).
# case-v9: "eta-abandon" (an ETA question dropped by a send-back or cancel is abandoned, not
# cancelled on the server).
Handle = WorkflowHandle[Any, Any]


async def _update(handle: Handle, name: str, arg: Any) -> CommandResult:
    return await handle.execute_update(name, arg, result_type=CommandResult)


async def _waive(handle: Handle) -> None:
    await wait_for(handle, lambda s: "waive_documents" in s.allowed_actions)
    await _update(handle, "waive_documents", WaiveDocuments(actor="cm", note="originals seen"))


async def _approve(handle: Handle, *actors: str, element: str | None = None) -> None:
    for actor in actors:
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        await _update(handle, "decide", Decide(actor=actor, decision="approve", element=element))


async def onboarding_standard(env: WorkflowEnvironment, handle: Handle) -> None:
    await _waive(handle)  # screening clear, risk low: approved straight through
    await _approve(handle, "fred", element="final_sign_off")
    await wait_for(handle, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))  # the lifecycle closes it
    await handle.result()


async def onboarding_enterprise(env: WorkflowEnvironment, handle: Handle) -> None:
    await _waive(handle)
    await wait_for(handle, lambda s: "complete_task" in s.allowed_actions)
    await _update(
        handle,
        "complete_task",
        CompleteTaskCmd(actor="sam", role="compliance_reviewer", task_key="enhanced_due_diligence"),
    )
    await _approve(handle, "rita", "omar", element="compliance_decision")
    state = await wait_for(handle, lambda s: s.stage == "security_review" and bool(s.elements))
    child_id = state.elements[0].child_workflow_id
    assert child_id is not None
    await wait_for(handle, lambda s: s.elements[0].child_workflow_id is not None)
    await asyncio.sleep(0.5)
    await _update(
        handle, "cancel", CancelCaseCmd(actor="cm", closure_code="client_withdrew", reason="moved")
    )
    await handle.result()


async def paused_and_breached(env: WorkflowEnvironment, handle: Handle) -> None:
    await wait_for(handle, lambda s: s.stage == "document_collection")
    await env.sleep(timedelta(hours=10))
    await _update(handle, "pause", PauseCase(actor="maria", reason="client travelling"))
    await env.sleep(timedelta(hours=30))
    await _update(handle, "resume", ResumeCase(actor="maria"))
    await env.sleep(timedelta(hours=19))  # warning, breach and level 1 and 2 escalations
    await wait_for(handle, lambda s: s.sla is not None and s.sla.escalation_level == 2)
    await _waive(handle)
    await _approve(handle, "fred", element="final_sign_off")
    await wait_for(handle, lambda s: s.status == "resolved")
    await _update(handle, "feedback", Feedback(actor="client", role="client", csat=2))
    await wait_for(handle, lambda s: s.status == "open" and s.stage == "final_review")
    await _approve(handle, "gina", element="final_sign_off")
    await wait_for(handle, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await handle.result()


async def order_group_approval(env: WorkflowEnvironment, handle: Handle) -> None:
    await _approve(handle, "a1", "a2")
    await wait_for(handle, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await handle.result()


async def return_proposal(env: WorkflowEnvironment, handle: Handle) -> None:
    for attempt in range(2):  # rejected once (back to review), accepted the second time
        state = await wait_for(
            handle,
            lambda s: bool(
                {"decide", "complete_task", "respond_to_proposal"} & set(s.allowed_actions)
            ),
        )
        while "respond_to_proposal" not in state.allowed_actions:
            if "decide" in state.allowed_actions:
                await _update(handle, "decide", Decide(actor="mgr", decision="approve"))
            elif "complete_task" in state.allowed_actions:
                open_task = next(
                    e.key for e in state.elements if e.kind == "task" and e.status == "active"
                )
                await _update(
                    handle, "complete_task", CompleteTaskCmd(actor="rm", task_key=open_task)
                )
            state = await wait_for(
                handle,
                lambda s: bool(
                    {"decide", "complete_task", "respond_to_proposal"} & set(s.allowed_actions)
                ),
            )
        accept = attempt > 0
        await _update(
            handle,
            "respond_to_proposal",
            ProposalResponse(
                actor="client", role="client", accept=accept, reason=None if accept else "too low"
            ),
        )
    await wait_for(handle, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await handle.result()


async def order_work_queue(env: WorkflowEnvironment, handle: Handle) -> None:
    """Taken, assigned, reassigned with a reason, then approved by two people."""
    await wait_for(handle, lambda s: "decide" in s.allowed_actions)
    await _update(
        handle,
        "assign",
        AssignWork(
            actor="maria", role="case_manager", assignee="maria", assignee_team="case_manager"
        ),
    )
    await _update(
        handle,
        "assign",
        AssignWork(
            actor="maria",
            role="case_manager",
            element="group_approval",
            assignee="rita",
            assignee_team="compliance_reviewer",
        ),
    )
    await _update(
        handle,
        "assign",
        AssignWork(
            actor="maria",
            role="case_manager",
            element="group_approval",
            assignee="omar",
            assignee_team="compliance_reviewer",
            reason="rita is out today",
        ),
    )
    await _approve(handle, "omar", "maria")
    await wait_for(handle, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await handle.result()


async def order_client_reply(env: WorkflowEnvironment, handle: Handle) -> None:
    """The customer writes while the order waits, and again once it is resolved (reopened)."""
    await wait_for(handle, lambda s: "decide" in s.allowed_actions)
    await _update(
        handle, "client_message", ClientMessage(actor="client", role="client", text="Any news?")
    )
    await _approve(handle, "a1", "a2")
    await wait_for(handle, lambda s: s.status == "resolved")
    await _update(
        handle,
        "client_message",
        ClientMessage(actor="client", role="client", text="One unit arrived damaged."),
    )
    # reopened at the last stage (fulfilment), which runs again and resolves by itself
    await wait_for(handle, lambda s: len(s.history) == 4 and s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await handle.result()


async def order_holder_warned(env: WorkflowEnvironment, handle: Handle) -> None:
    """Held by one person, the approval stage goes at risk and warns; then it is approved."""
    await wait_for(handle, lambda s: "decide" in s.allowed_actions)
    await _update(
        handle,
        "assign",
        AssignWork(
            actor="maria", role="case_manager", assignee="rita", assignee_team="compliance_reviewer"
        ),
    )
    await env.sleep(timedelta(hours=7))
    await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "warning")
    await _approve(handle, "a1", "a2")
    await wait_for(handle, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await handle.result()


async def order_continued(env: WorkflowEnvironment, handle: Handle) -> None:
    """Sent back again and again (approved once each time) until the history rolls over at
    the approval; then approved by two people, resolved and closed in the new run."""
    case = env.client.get_workflow_handle(handle.id)  # the latest run, whichever it is
    loops = 0
    while len(await runs(env.client, case.id)) == 1:

        def at_approval(s: CaseSnapshot, visits: int = 2 + 2 * loops) -> bool:
            return len(s.history) == visits and "decide" in s.allowed_actions

        await wait_for(case, at_approval)
        await settled(case)
        if len(await runs(env.client, case.id)) > 1:
            break
        await _update(case, "decide", Decide(actor="a1", decision="approve"))
        await settled(case)
        if len(await runs(env.client, case.id)) > 1:
            break
        await _update(case, "send_back", SendBackCmd(actor="m1", to_stage="intake", reason="again"))
        loops += 1
    state = await wait_for(case, lambda s: "decide" in s.allowed_actions)
    await _approve(case, *[a for a in ("a1", "a2") if a not in {v.actor for v in state.approvals}])
    await wait_for(case, lambda s: s.status == "resolved")
    await env.sleep(timedelta(days=7, minutes=1))
    await case.result()


HISTORY_LIMITS = {"order_continued": 150}  # events: rolls over after a few send-backs

SCENARIOS: dict[str, tuple[str, dict[str, Any], dict[str, Any], Callable[..., Awaitable[None]]]] = {
    "onboarding_standard": ("client_onboarding", {}, {}, onboarding_standard),
    "onboarding_enterprise_cancelled": (
        "client_onboarding",
        {"client_type": "enterprise", "tier": "premium", "country": "US"},
        {},
        onboarding_enterprise,
    ),
    "onboarding_paused_breached_reopened": ("client_onboarding", {}, {}, paused_and_breached),
    "order_group_approval": (
        "order_approval",
        {},
        {"order_id": "PO-1", "order_value": 60000, "currency": "GBP", "items": 3},
        order_group_approval,
    ),
    "return_proposal_rejected_then_accepted": (
        "return_request",
        {},
        {"order_id": "PO-2", "return_type": "refund", "has_receipt": True, "amount": 250},
        return_proposal,
    ),
    "order_work_queue": (
        "order_approval",
        {},
        {"order_id": "PO-3", "order_value": 60000, "currency": "GBP", "items": 2},
        order_work_queue,
    ),
    "order_estimated": (
        "order_approval",
        {},
        {"order_id": "PO-5", "order_value": 60000, "currency": "GBP", "items": 3},
        order_group_approval,
    ),
    "order_holder_warned": (
        "order_approval",
        {},
        {"order_id": "PO-6", "order_value": 60000, "currency": "GBP", "items": 1},
        order_holder_warned,
    ),
    "order_decided": (
        "order_approval",
        {},
        {"order_id": "PO-8", "order_value": 60000, "currency": "GBP", "items": 3},
        order_group_approval,
    ),
    "order_continued": (
        "order_approval",
        {},
        {"order_id": "PO-7", "order_value": 60000, "currency": "GBP", "items": 2},
        order_continued,
    ),
    "order_client_reply": (
        "order_approval",
        {},
        {"order_id": "PO-4", "order_value": 60000, "currency": "GBP", "items": 2},
        order_client_reply,
    ),
}


async def record_all(
    client: Client, sessions: SessionFactory, env: WorkflowEnvironment, only: list[str]
) -> None:
    async with running_worker(client, sessions) as worker:
        for name, (case_type, who, data, scenario) in SCENARIOS.items():
            if only and name not in only:
                continue
            _, handle = await start(
                client,
                sessions,
                worker.task_queue,
                case_type,
                data=data,
                client_profile=profile(**who),
                started=worker.started_cases,
                history_limit=HISTORY_LIMITS.get(name),
            )
            await scenario(env, handle)
            chain = await runs(client, handle.id)
            for n, run_id in enumerate(chain, start=1):
                history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                suffix = f"-run{n}" if len(chain) > 1 else ""
                (HERE / f"{GENERATION}-{name}{suffix}.json").write_text(history.to_json())
                print(f"recorded {name}{suffix}: {len(history.events)} events")


async def record(only: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_embedded_postgres(Path(tmp) / "pg", database="histories")
        await asyncio.to_thread(upgrade_head, url)
        engine = make_engine(url)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=venv_binary("temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
        try:
            await register_search_attributes(env.client)
            await record_all(env.client, make_session_factory(engine), env, only)
        finally:
            await env.shutdown()
            await engine.dispose()
            server.cleanup()


if __name__ == "__main__":
    import sys

    asyncio.run(record(sys.argv[1:]))
