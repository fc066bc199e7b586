"""Turn the playbook on disk into a case plan. Its result is pinned in the case's history."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from playbooks.loader import load_playbook
from schemas.plan import CasePlan, PlanCaseInput, Playbook, TaskKind
from workflows.routing import build_plan

# Automatic tasks the workflow knows how to perform. A playbook naming any other automatic task
# is rejected (retryably: fix the file and waiting cases go on) instead of silently
# "completing" work nobody did.
AUTOMATIC_TASKS = frozenset({"provision_account", "sanctions_screening", "risk_assessment"})


class PlanningActivities:
    def __init__(self, playbook_path: Path) -> None:
        self._path = playbook_path
        self._cached: tuple[float, Playbook] | None = None

    def playbook(self) -> Playbook:
        """The current playbook, re-read when the file changes (new cases pick up edits)."""
        mtime = self._path.stat().st_mtime
        if self._cached is None or self._cached[0] != mtime:
            self._cached = (mtime, load_playbook(self._path))
        return self._cached[1]

    @activity.defn(name="plan_case")
    async def plan_case(self, inp: PlanCaseInput) -> CasePlan:
        """Build this client's plan from the playbook as it is now."""
        try:
            playbook = self.playbook()
        except (OSError, ValidationError, ValueError) as e:
            raise ApplicationError(
                f"playbook {self._path.name} cannot be used: {e}", type="InvalidPlaybook"
            ) from e
        plan = build_plan(playbook, inp.client)
        unknown = [
            t.key
            for s in plan.stages
            for t in s.tasks
            if t.kind == TaskKind.AUTO and t.key not in AUTOMATIC_TASKS
        ]
        if unknown:
            raise ApplicationError(
                f"playbook declares automatic tasks the worker cannot run: {unknown}",
                type="InvalidPlaybook",
            )
        return plan
