"""Builders for test inputs, with realistic defaults a test overrides field by field."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowHandle

from schemas.case import CaseState
from schemas.client import ClientProfile
from workflows.onboarding import OnboardingCaseWorkflow


def profile(**overrides: Any) -> ClientProfile:
    data: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+447700900123",
        "client_type": "individual",
        "tier": "standard",
        "country": "GB",
    }
    data.update(overrides)
    return ClientProfile.model_validate(data)


def profile_json(**overrides: Any) -> dict[str, Any]:
    return profile(**overrides).model_dump(mode="json")


async def wait_for_state(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[CaseState], bool],
    *,
    timeout: float = 15,
) -> CaseState:
    """Poll the workflow's state query until ``predicate`` holds (fails the test on timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: CaseState | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await handle.query(OnboardingCaseWorkflow.state)
        if predicate(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"state never matched; last seen: {last}")
