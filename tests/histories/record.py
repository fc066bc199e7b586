"""Record the histories that ``tests/workflows/test_replay.py`` replays.

Files are named ``<version>-<scenario>.json``. Older versions stay in the folder for as long as
cases started under them may still be running, so every test run replays them too.

Run it when the workflow's *current* behaviour should become the new baseline (never to paper
over a replay failure: that failure means running cases would break, so put the change behind
``workflow.patched`` instead):

    .venv/bin/python -m tests.histories.record

Each scenario runs on the time-skipping server against a throwaway Postgres.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from schemas.commands import (
    CompleteTask,
    ComplianceDecision,
    FinalSignOff,
    PauseRequest,
    ResumeRequest,
)
from schemas.enums import Decision, Stage
from store.db import make_engine, make_session_factory
from store.embedded import start_embedded_postgres
from store.migrate import upgrade_head
from tests.conftest import (
    register_search_attributes,
    running_worker,
    test_settings,
    venv_binary,
)
from tests.factories import start_case, wait_for_state, waived_documents
from workflows.onboarding import OnboardingCaseWorkflow as Wf

HERE = Path(__file__).resolve().parent
VERSION = "v2"  # bump with each workflow.patched(...) generation
Handle = WorkflowHandle[Any, Any]


async def _docs(handle: Handle) -> None:
    await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
    await handle.signal(Wf.documents_received, waived_documents())
    await wait_for_state(handle, lambda s: s.stage != Stage.DOCUMENT_COLLECTION)


async def _approve(handle: Handle, *reviewers: str) -> None:
    for reviewer in reviewers:
        await handle.execute_update(
            Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer=reviewer)
        )


async def _finish(handle: Handle) -> None:
    await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
    await handle.execute_update(Wf.sign_off, FinalSignOff(reviewer="fred"))
    await handle.result()


async def standard(env: WorkflowEnvironment, handle: Handle) -> None:
    await _docs(handle)  # screening clear, risk low: approved straight through
    await _finish(handle)


async def sanctions_match(env: WorkflowEnvironment, handle: Handle) -> None:
    await _docs(handle)
    await wait_for_state(handle, lambda s: any(t.key == "review_screening_match" for t in s.tasks))
    for key in ("review_screening_match", "enhanced_due_diligence"):
        await handle.execute_update(Wf.complete_task, CompleteTask(task_key=key, actor="sam"))
    await _approve(handle, "rita", "omar")
    await _finish(handle)


async def enterprise_international_premium(env: WorkflowEnvironment, handle: Handle) -> None:
    await _docs(handle)
    await handle.execute_update(
        Wf.complete_task, CompleteTask(task_key="enhanced_due_diligence", actor="sam")
    )
    await _approve(handle, "rita", "omar")
    await wait_for_state(handle, lambda s: s.stage == Stage.SECURITY_REVIEW)
    await handle.execute_update(
        Wf.complete_task, CompleteTask(task_key="review_security_questionnaire", actor="sec")
    )
    await wait_for_state(handle, lambda s: s.stage == Stage.ACCOUNT_SETUP)
    await handle.execute_update(
        Wf.complete_task, CompleteTask(task_key="assign_account_manager", actor="rm")
    )
    await _finish(handle)


async def paused(env: WorkflowEnvironment, handle: Handle) -> None:
    await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
    await env.sleep(timedelta(hours=10))
    await handle.signal(Wf.pause, PauseRequest(actor="maria", reason="client travelling"))
    await env.sleep(timedelta(hours=30))
    await handle.signal(Wf.resume, ResumeRequest(actor="maria"))
    await env.sleep(timedelta(hours=2))
    await _docs(handle)
    await _finish(handle)


async def breached(env: WorkflowEnvironment, handle: Handle) -> None:
    await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
    await env.sleep(timedelta(hours=29))  # at-risk, warning, breach, level 1 and 2
    await wait_for_state(handle, lambda s: s.sla is not None and s.sla.escalation_level == 2)
    await _docs(handle)
    await _finish(handle)


SCENARIOS: dict[str, tuple[dict[str, Any], Callable[..., Awaitable[None]]]] = {
    "standard": ({}, standard),
    "enterprise_international_premium": (
        {"client_type": "enterprise", "tier": "premium", "country": "US"},
        enterprise_international_premium,
    ),
    "paused": ({}, paused),
    "breached": ({}, breached),
    "sanctions_match": (
        {"name": "Vladimir Putin", "country": "RU", "date_of_birth": "1952-10-07"},
        sanctions_match,
    ),
}


async def record() -> None:
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
            sessions = make_session_factory(engine)
            async with running_worker(env.client, sessions, test_settings()) as worker:
                for name, (client, scenario) in SCENARIOS.items():
                    _, handle = await start_case(env, worker, **client)
                    await scenario(env, handle)
                    history = await handle.fetch_history()
                    (HERE / f"{VERSION}-{name}.json").write_text(history.to_json())
                    print(f"recorded {name}: {len(history.events)} events")
        finally:
            await env.shutdown()
            await engine.dispose()
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(record())
