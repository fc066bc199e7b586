"""Saved histories of representative cases must replay on the current workflow code.

A failure here means a deployed worker would break running cases: put the change behind
``workflow.patched(...)`` rather than re-recording (see tests/histories/record.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from schemas.case import CaseInput, CaseOutcome
from schemas.contracts import EngineCaseInput
from workers.main import WORKFLOWS, sandbox_runner

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("*.json"))
FROZEN = [p for p in HISTORIES if p.stem.startswith(("v1-", "v2-"))]  # OnboardingCaseWorkflow
ENGINE = [p for p in HISTORIES if p.stem.startswith("case-")]  # CaseWorkflow


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def test_the_representative_cases_are_all_saved():
    representative = {"standard", "enterprise_international_premium", "paused", "breached"}
    assert {p.stem for p in FROZEN} == {f"v1-{n}" for n in representative} | {
        f"v2-{n}" for n in representative | {"sanctions_match"}
    }
    engine = {
        "onboarding_standard",
        "onboarding_enterprise_cancelled",
        "onboarding_paused_breached_reopened",
        "order_group_approval",
        "return_proposal_rejected_then_accepted",
    }
    assert {p.stem for p in ENGINE} == {f"case-v1-{n}" for n in engine} | {
        "case-v2-order_work_queue",
        "case-v2-order_client_reply",  # client messages before the reply notice
        "case-v3-order_client_reply",  # and after
        "case-v4-order_estimated",  # the ETA asked of estimate_eta at open and at each stage
        "case-v5-order_holder_warned",  # SLA alerts to the case's holder too
        "case-v6-order_continued-run1",  # rolled over (continue-as-new) at the approval
        "case-v6-order_continued-run2",  # and finished in the continued run
        "case-v7-order_decided",  # the approvers' decisions written to fields["decisions"]
        "case-v8-order_estimated",  # each stage's ETA asked while the case waits
        "case-v9-order_estimated",  # and a dropped ETA question abandoned, not cancelled
    }
    assert set(HISTORIES) == set(FROZEN) | set(ENGINE)


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


def test_each_history_is_of_the_workflow_type_its_name_says():
    for path in HISTORIES:
        expected = "CaseWorkflow" if path in ENGINE else "OnboardingCaseWorkflow"
        assert workflow_type(load(path)) == expected, path.name


def patches_in(history: WorkflowHistory) -> set[str]:
    """The workflow.patched(...) ids recorded in a history (core_patch markers)."""
    found = set()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name == "core_patch":
            found |= {json.loads(p.data)["id"] for p in attrs.details["patch-data"].payloads}
    return found


def test_v2_histories_carry_the_patch_marker_and_v1_do_not():
    for path in FROZEN:
        marked = "onboarding-v2" in patches_in(load(path))
        assert marked == path.stem.startswith("v2-"), path.name


def test_each_engine_generation_carries_exactly_its_patches():
    generations = {
        "case-v1-": set(),
        "case-v2-": {"sla-due-at-column"},
        "case-v3-": {"sla-due-at-column", "client-reply-notice"},
        "case-v4-": {"sla-due-at-column", "eta-estimate"},  # (no client message in it)
        "case-v5-": {"sla-due-at-column", "eta-estimate", "holder-sla-notices"},
        # (nobody holds it, so no holder notice is asked; the new run never grows that long)
        "case-v6-order_continued-run1": {"sla-due-at-column", "eta-estimate", "continue-as-new"},
        "case-v6-order_continued-run2": {"sla-due-at-column", "eta-estimate"},
        "case-v7-": {"sla-due-at-column", "eta-estimate", "decision-fields"},
        "case-v8-": {"sla-due-at-column", "eta-estimate", "decision-fields", "eta-while-waiting"},
        "case-v9-": {
            "sla-due-at-column",
            "eta-estimate",
            "decision-fields",
            "eta-while-waiting",
            "eta-abandon",
        },
    }
    for path in ENGINE:
        wanted = next(v for k, v in generations.items() if path.stem.startswith(k))
        assert patches_in(load(path)) == wanted, path.name


def test_the_continued_case_rolled_over_and_carried_its_state():
    first, second = (load(p) for p in ENGINE if p.stem.startswith("case-v6-order_continued"))
    assert first.events[-1].event_type == (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
    started = second.events[0].workflow_execution_started_event_attributes
    (payload,) = pydantic_data_converter.payload_converter.from_payloads(
        started.input.payloads, [EngineCaseInput]
    )
    assert payload.carried is not None and payload.carried.state.stage == "approval"
    assert len(payload.carried.state.history) >= 6  # the send-back loops came along
    assert second.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


def test_the_work_queue_history_holds_its_assignments():
    (path,) = [p for p in ENGINE if p.stem == "case-v2-order_work_queue"]
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in load(path).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert updates.count("assign") == 3 and updates.count("decide") == 2


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_saved_history_replays_on_current_code(path: Path):
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    await replayer.replay_workflow(load(path))


@workflow.defn(name="OnboardingCaseWorkflow")
class DriftedWorkflow:
    """Same name, different commands: what an unpatched change looks like to replay."""

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseOutcome:
        await workflow.sleep(timedelta(seconds=1))
        raise RuntimeError("unreachable in replay")


async def test_replay_catches_an_incompatible_change():
    # unsandboxed: this test module does file I/O at import, which the sandbox rightly refuses
    replayer = Replayer(
        workflows=[DriftedWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    result = await replayer.replay_workflow(load(FROZEN[0]), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


@workflow.defn(name="CaseWorkflow")
class DriftedEngine:
    """The engine's name with a timer first: what an unpatched engine change looks like."""

    @workflow.run
    async def run(self, inp: EngineCaseInput) -> None:
        await workflow.sleep(timedelta(seconds=1))
        raise RuntimeError("unreachable in replay")


async def test_replay_catches_an_incompatible_engine_change():
    replayer = Replayer(
        workflows=[DriftedEngine],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    for path in ENGINE:
        result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
        assert result.replay_failure is not None, path.name
        assert "nondetermin" in str(result.replay_failure).lower()
