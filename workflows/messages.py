"""What the case tells people at each milestone: pure builders of ``NotifyInput``.

Kept out of the workflow class so ``onboarding.py`` reads as the process, and so the wording and
the dynamic fields (status, next steps, estimated completion) are unit-testable. The activity
validates every context against the milestone's template model before anything is sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas.client import ClientProfile
from schemas.documents import DocumentProblem, DocumentRequirement
from schemas.enums import Stage
from schemas.notifications import NotifyInput, Recipient
from schemas.plan import CasePlan, Messaging

STATUS_WORDS = {
    Stage.ACKNOWLEDGEMENT: "Application received",
    Stage.DOCUMENT_COLLECTION: "Collecting your documents",
    Stage.COMPLIANCE_REVIEW: "Compliance review",
    Stage.SECURITY_REVIEW: "Security review",
    Stage.ACCOUNT_SETUP: "Setting up your account",
    Stage.FINAL_REVIEW: "Final review",
    Stage.WELCOME: "Welcome",
}


def estimated_completion(
    plan: CasePlan, stage: Stage, remaining_in_stage: timedelta | None, now: datetime
) -> datetime:
    """Now + what is left of this stage's SLA + the SLAs of the stages still to come."""
    order = [s.stage for s in plan.stages]
    later = plan.stages[order.index(stage) + 1 :] if stage in order else []
    total = max(remaining_in_stage or timedelta(0), timedelta(0))
    total += sum((s.sla for s in later if s.sla is not None), timedelta(0))
    return now + total


def _messaging(plan: CasePlan) -> Messaging:
    return plan.messaging or Messaging()


def _client(
    *,
    ref: str,
    client: ClientProfile,
    milestone: str,
    stage: Stage,
    next_steps: list[str],
    eta: datetime | None,
    extra: dict[str, Any],
    occurrence: int = 1,
    urgent: bool = False,
) -> NotifyInput:
    context = {
        "case_ref": ref,
        "client_name": client.name,
        "status": STATUS_WORDS[stage],
        "next_steps": next_steps,
        "estimated_completion": eta,
        **extra,
    }
    return NotifyInput(
        case_ref=ref,
        milestone=milestone,
        context=context,
        recipient=Recipient(name=client.name, email=str(client.email), phone=client.phone),
        channels=list(client.contact_preferences.channels),
        urgent=urgent,
        occurrence=occurrence,
    )


def _titles(requirements: list[DocumentRequirement]) -> list[str]:
    return [r.title for r in requirements] or ["Identity and address documents"]


def case_created(ref: str, client: ClientProfile, plan: CasePlan, eta: datetime) -> NotifyInput:
    return _client(
        ref=ref,
        client=client,
        milestone="case_created",
        stage=Stage.DOCUMENT_COLLECTION,
        eta=eta,
        next_steps=["Upload the documents listed in this message through your secure portal link"],
        extra={
            "product_name": _messaging(plan).product_name,
            "required_documents": _titles(plan.document_checklist),
        },
    )


def documents_needed(
    ref: str,
    client: ClientProfile,
    problems: list[DocumentProblem],
    titles: dict[str, str],
    eta: datetime,
    respond_by: datetime | None,
    occurrence: int,
) -> NotifyInput:
    return _client(
        ref=ref,
        client=client,
        milestone="documents_needed",
        stage=Stage.DOCUMENT_COLLECTION,
        eta=eta,
        occurrence=occurrence,
        urgent=True,
        next_steps=["Upload the documents below; we check them as soon as they arrive"],
        extra={
            "documents_needed": [
                {"name": titles.get(p.kind.value, p.kind.value), "reason": p.detail}
                for p in problems
            ],
            "respond_by": respond_by,
        },
    )


def documents_received(
    ref: str, client: ClientProfile, received: list[str], eta: datetime, occurrence: int
) -> NotifyInput:
    return _client(
        ref=ref,
        client=client,
        milestone="documents_received",
        stage=Stage.COMPLIANCE_REVIEW,
        eta=eta,
        occurrence=occurrence,
        next_steps=["We are running our compliance checks; no action is needed from you"],
        extra={"documents_received": received or ["Your documents"], "documents_outstanding": []},
    )


def compliance_approved(
    ref: str,
    client: ClientProfile,
    checks: list[str],
    at: datetime,
    eta: datetime,
    occurrence: int,
) -> NotifyInput:
    return _client(
        ref=ref,
        client=client,
        milestone="compliance_approved",
        stage=Stage.ACCOUNT_SETUP,
        eta=eta,
        occurrence=occurrence,
        next_steps=["We are setting up your account"],
        extra={"approved_at": at, "checks_completed": checks or ["Compliance review"]},
    )


def provisioning_started(
    ref: str,
    client: ClientProfile,
    plan: CasePlan,
    at: datetime,
    eta: datetime,
    occurrence: int,
) -> NotifyInput:
    return _client(
        ref=ref,
        client=client,
        milestone="account_provisioning_started",
        stage=Stage.ACCOUNT_SETUP,
        eta=eta,
        occurrence=occurrence,
        next_steps=["Your account is being opened; we will confirm when it is ready"],
        extra={"accounts": [_messaging(plan).product_name], "started_at": at},
    )


def setup_completed(
    ref: str,
    client: ClientProfile,
    plan: CasePlan,
    account_number: str,
    at: datetime,
    eta: datetime,
    occurrence: int,
) -> NotifyInput:
    digits = "".join(ch for ch in account_number if ch.isdigit())
    return _client(
        ref=ref,
        client=client,
        milestone="setup_completed",
        stage=Stage.FINAL_REVIEW,
        eta=eta,
        occurrence=occurrence,
        next_steps=["A final review is under way; your welcome pack follows shortly"],
        extra={
            "account_name": _messaging(plan).product_name,
            "account_number_last4": digits[-4:].rjust(4, "0"),
            "completed_at": at,
        },
    )


def welcome_package(ref: str, client: ClientProfile, plan: CasePlan, at: datetime) -> NotifyInput:
    messaging = _messaging(plan)
    return _client(
        ref=ref,
        client=client,
        milestone="welcome_package",
        stage=Stage.WELCOME,
        eta=at,
        next_steps=["Sign in to online banking", "Contact your relationship manager any time"],
        extra={
            "relationship_manager_name": messaging.relationship_manager_name,
            "relationship_manager_email": messaging.relationship_manager_email,
            "resources": [r.model_dump() for r in messaging.welcome_resources],
        },
    )


def staff_sla_notice(
    *,
    ref: str,
    client: ClientProfile,
    milestone: str,
    role: str,
    stage: Stage,
    stage_started_at: datetime,
    due_at: datetime,
    owner: str,
    now: datetime,
    extra: dict[str, Any],
) -> NotifyInput:
    """An internal notice to a role; the activity resolves the role's address."""
    remaining = due_at - now
    context: dict[str, Any] = {
        "case_ref": ref,
        "client_name": client.name,
        "status": STATUS_WORDS[stage],
        "next_steps": [f"Open case {ref} and move {STATUS_WORDS[stage].lower()} forward"],
        "estimated_completion": None,
        "stage": STATUS_WORDS[stage],
        "stage_started_at": stage_started_at,
        "sla_due_at": due_at,
        "assignee": owner,
        **extra,
    }
    if milestone in ("sla_warning", "sla_at_risk"):
        context["time_remaining"] = max(remaining, timedelta(0))
    else:
        context["overdue_by"] = max(-remaining, timedelta(seconds=1))
    return NotifyInput(
        case_ref=ref,
        milestone=milestone,
        context=context,
        recipient=Recipient(name=role),
        channels=[],
        audience="staff",
        urgent=milestone != "sla_warning",
    )
