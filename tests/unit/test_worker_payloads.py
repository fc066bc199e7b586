"""The worker's payload converter shares each distinct pinned case type between cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter

from playbooks.registry import CaseTypeRegistry, pinned_calendars
from schemas.client import ClientProfile
from schemas.contracts import EngineCaseInput
from workers.main import worker_tuning
from workers.payloads import PINNED, WorkerPayloadConverter

REPO = Path(__file__).resolve().parents[2]


def _input(ref: str, case_type_name: str = "demo_onboarding") -> EngineCaseInput:
    registry = CaseTypeRegistry.load(
        [REPO / "playbooks" / "case_types", REPO / "playbooks" / "demo"]
    )
    case_type = registry.get(case_type_name)
    return EngineCaseInput(
        case_ref=ref,
        workflow_id=f"{case_type.workflow_prefix or case_type.name}-{ref}",
        case_type=case_type,
        client=ClientProfile.model_validate(
            {
                "name": "Jane Smith",
                "email": "jane@example.com",
                "client_type": "individual",
                "country": "GB",
            }
        ),
        calendars=pinned_calendars(registry, [case_type], datetime.now(UTC)),
        row_exists=True,
    )


def _round_trip(value: EngineCaseInput) -> EngineCaseInput:
    converter = WorkerPayloadConverter()  # the SDK makes one per workflow run: so do we
    [payload] = converter.to_payloads([value])
    [back] = converter.from_payloads([payload], [EngineCaseInput])
    assert isinstance(back, EngineCaseInput)
    return back


def test_two_cases_of_one_type_share_its_decoded_case_type() -> None:
    first, second = _round_trip(_input("C-AAAA1")), _round_trip(_input("C-AAAA2"))
    assert first.case_type is second.case_type
    assert first.case_ref == "C-AAAA1" and second.case_ref == "C-AAAA2"
    assert first.case_type == _input("C-AAAA3").case_type  # the content is unchanged


def test_a_different_case_type_is_not_shared() -> None:
    demo, onboarding = (
        _round_trip(_input("C-BBBB1")),
        _round_trip(_input("C-BBBB2", "client_onboarding")),
    )
    assert demo.case_type is not onboarding.case_type
    assert onboarding.case_type.name == "client_onboarding"


def test_the_wire_format_is_the_pydantic_converters() -> None:
    value = _input("C-CCCC1")
    ours = WorkerPayloadConverter().to_payloads([value])
    assert ours == pydantic_data_converter.payload_converter.to_payloads([value])


def test_shared_models_are_bounded() -> None:
    assert len(PINNED) <= 512


def test_worker_tuning_reaches_the_worker_arguments() -> None:
    from core.settings import Settings

    tuning = worker_tuning(
        Settings(worker_max_cached_workflows=42, worker_max_concurrent_workflow_task_polls=6)
    )
    assert tuning["max_cached_workflows"] == 42
    assert tuning["max_concurrent_workflow_task_polls"] == 6
    assert tuning["sticky_queue_schedule_to_start_timeout"].total_seconds() == 60
