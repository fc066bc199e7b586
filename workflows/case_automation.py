"""Automation inside stages: document verification, screening and risk, straight-through
approval, account provisioning."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import (
        Approval,
    )
    from schemas.commands import (
        DocumentsReceived,
    )
    from schemas.compliance import RiskLevel, ScreenClientInput, ScreeningOutcome
    from schemas.documents import VerificationResult, VerifyDocumentsInput
    from schemas.projection import (
        AccountRef,
        CasePatch,
        ProvisionAccountInput,
    )
    from workflows import messages


from workflows.case_base import (
    EXTERNAL_RETRY,
    STORE_RETRY,
)
from workflows.case_waiting import WaitingMixin


class AutomationMixin(WaitingMixin):
    async def _run_automatic_task(self, key: str) -> None:
        if key == "provision_account":
            account = await workflow.execute_activity(
                "provision_account",
                ProvisionAccountInput(case_ref=self._ref, at=workflow.now()),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=EXTERNAL_RETRY,
                result_type=AccountRef,
            )
            self._account_number = account.account_number
            if self._v2 and self._plan and self._client:
                self._webhook("account.provisioned", {"account_number": account.account_number})
                self._notify(
                    messages.setup_completed(
                        self._ref,
                        self._client,
                        self._plan,
                        account.account_number,
                        workflow.now(),
                        self._eta(),
                        self._occurrence("setup_completed"),
                    )
                )
        elif key == "sanctions_screening":
            await self._screen()
        elif key == "risk_assessment" and self._screening is None:
            await self._screen()  # the screening activity scores risk as well
        await self._mark_task_done(key, actor="system")

    async def _screen(self) -> None:
        """Sanctions/PEP screening plus risk score; a potential match needs a human review."""
        assert self._client is not None
        outcome = await workflow.execute_activity(
            "screen_client",
            ScreenClientInput(
                case_ref=self._ref, client=self._client, attempt_key=f"visit-{len(self._history)}"
            ),
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=EXTERNAL_RETRY,
            result_type=ScreeningOutcome,
        )
        self._screening = outcome
        if outcome.decision == "potential_match":
            self._add_task(
                "review_screening_match",
                f"Review potential match: {outcome.matched_name} ({outcome.score:.0f})",
            )
        if outcome.risk_level == RiskLevel.HIGH:
            self._add_task("enhanced_due_diligence", "Enhanced due diligence")
        detail = {
            "decision": outcome.decision,
            "score": outcome.score,
            "matched_name": outcome.matched_name,
            "list_entry_id": outcome.list_entry_id,
            "list_version": outcome.list_version,
            "risk_level": outcome.risk_level.value,
            "risk_factors": outcome.risk_factors,
        }
        await self._project(
            case=CasePatch(flags=self._flags()),
            tasks=[t for t in self._tasks.values() if t.stage == self._stage],
            events=[
                self._event(
                    f"screening-{len(self._history)}", "screening_completed", "system", detail
                )
            ],
        )

    async def _approve_if_straight_through(self) -> None:
        """No human needed when screening is clear, risk is not high and nothing is open."""
        screening = self._screening
        if (
            screening is None
            or screening.decision != "clear"
            or screening.risk_level == RiskLevel.HIGH
            or self._approvals_needed() > 1
            or self._open_manual_tasks(self._stage)
            or self._approvals
            or self._rejection is not None
        ):
            return
        reason = f"straight-through: screening clear, risk {screening.risk_level.value}"
        self._approvals.append(
            Approval(reviewer="system", decision="approve", reason=reason, at=workflow.now())
        )
        await self._project(
            events=[
                self._event(
                    f"auto-approved-{len(self._history)}",
                    "compliance_auto_approved",
                    "system",
                    {"reason": reason},
                )
            ]
        )

    async def _collect_documents(self) -> None:
        """Verify uploads against the checklist; ask the client again until they pass."""
        assert self._plan is not None and self._client is not None
        checklist = self._plan.document_checklist
        titles = {r.kind.value: r.title for r in checklist}
        last_problems: list[str] = []
        while self._documents is None and not self._interrupted():
            seen = self._uploads
            result = await workflow.execute_activity(
                "verify_documents",
                VerifyDocumentsInput(
                    case_ref=self._ref, checklist=checklist, as_of=workflow.now().date()
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=STORE_RETRY,
                result_type=VerificationResult,
            )
            if self._documents is not None:  # a waiver arrived meanwhile
                return
            if result.complete:
                self._accepted_documents = result.accepted
                self._documents = DocumentsReceived(
                    actor="verification", document_ids=[d.document_id for d in result.accepted]
                )
                await self._project(
                    events=[
                        self._event(
                            f"documents-verified-{len(self._history)}",
                            "documents_verified",
                            "system",
                            {"documents": [d.document_id for d in result.accepted]},
                        )
                    ]
                )
                return
            problems = [f"{p.kind.value}:{p.problem}" for p in result.problems]
            # Missing items were listed in the acknowledgement; ask again only when something
            # uploaded cannot be used (expired, too old, undated) and the client must act.
            invalid = any(p.problem != "missing" for p in result.problems)
            reminder, self._documents_reminder_due = self._documents_reminder_due, False
            if (problems != last_problems and invalid) or reminder:
                clock, now = self._clock, workflow.now()
                remaining = clock.remaining(now) if clock is not None else None
                respond_by = now + remaining if remaining is not None else None
                asked = self._occurrence("documents_needed")
                self._notify(
                    messages.documents_needed(
                        self._ref,
                        self._client,
                        result.problems,
                        titles,
                        self._eta(),
                        respond_by,
                        asked,
                    )
                )
                await self._project(
                    events=[
                        self._event(
                            f"documents-needed-{asked}",
                            "documents_needed",
                            "system",
                            {"problems": problems},
                        )
                    ]
                )
            last_problems = problems

            def new_upload(seen: int = seen) -> bool:
                return (
                    self._uploads > seen
                    or self._documents is not None
                    or self._documents_reminder_due
                )

            await self._wait(new_upload)
