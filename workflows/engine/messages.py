"""What an engine case tells people: pure builders of ``NotifyInput`` from the case's state.

The onboarding milestones keep the wording and context of the frozen workflow (same templates,
same fields); ``case_update`` and ``proposal`` serve any case type; staff notices go to roles.
The notify activity validates every context against its template's model before sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas.case_state import CaseState
from schemas.casetype import CaseType, DocumentsElement, StageDef
from schemas.client import ClientProfile
from schemas.documents import DocumentRequirement
from schemas.notifications import NotifyInput, Recipient
from schemas.work import PERSON

# The frozen workflow's status words per milestone: the same messages on the engine.
ONBOARDING_STATUS = {
    "case_created": "Collecting your documents",
    "documents_needed": "Collecting your documents",
    "documents_received": "Compliance review",
    "compliance_approved": "Setting up your account",
    "account_provisioning_started": "Setting up your account",
    "setup_completed": "Final review",
    "welcome_package": "Welcome",
}
NEXT_STEPS = {
    "case_created": "Upload the documents listed in this message through your secure portal link",
    "documents_needed": "Upload the documents below; we check them as soon as they arrive",
    "documents_received": "We are running our compliance checks; no action is needed from you",
    "compliance_approved": "We are setting up your account",
    "account_provisioning_started": (
        "Your account is being opened; we will confirm when it is ready"
    ),
    "setup_completed": "A final review is under way; your welcome pack follows shortly",
}


# Messages whose context is only what their milestone needs (no status/next steps/ETA).
BARE_CLIENT_MESSAGES = frozenset({"proposal"})


def stage_words(stage: StageDef) -> str:
    return stage.client_status or stage.title


def eta(
    case_type: CaseType, state: CaseState, remaining: timedelta | None, now: datetime
) -> datetime:
    """Now + what is left of this stage's SLA + the SLAs of the stages still to come."""
    keys = [s.key for s in case_type.stages]
    later = case_type.stages[keys.index(state.stage) + 1 :] if state.stage in keys else []
    total = max(remaining or timedelta(0), timedelta(0))
    total += sum((s.sla for s in later if s.sla is not None), timedelta(0))
    return now + total


def checklist_for(element: DocumentsElement, client: ClientProfile) -> list[DocumentRequirement]:
    return list(
        element.checklists.get(client.client_type.value) or element.checklists.get("default") or []
    )


def client_message(
    *,
    milestone: str,
    case_type: CaseType,
    state: CaseState,
    client: ClientProfile,
    stage: StageDef,
    now: datetime,
    eta_at: datetime | None,
    extra: dict[str, Any] | None = None,
    urgent: bool = False,
) -> NotifyInput:
    """One client message; ``extra`` adds the milestone's own context fields."""
    context: dict[str, Any] = {"case_ref": state.case_ref, "client_name": client.name}
    if milestone not in BARE_CLIENT_MESSAGES:
        context |= {
            "status": ONBOARDING_STATUS.get(milestone, stage_words(stage)),
            "next_steps": [NEXT_STEPS.get(milestone, "We will let you know as the case moves on")],
            "estimated_completion": eta_at,
        }
    context.update(_milestone_fields(milestone, case_type, state, client, now))
    context.update(extra or {})
    return NotifyInput(
        case_ref=state.case_ref,
        milestone=milestone,
        context=context,
        recipient=Recipient(
            name=client.name,
            email=str(client.email),
            phone=client.phone,
            time_zone=client.time_zone,
        ),
        channels=list(client.contact_preferences.channels),
        urgent=urgent,
        occurrence=state.next_number(f"msg:{milestone}"),
    )


def _milestone_fields(
    milestone: str, case_type: CaseType, state: CaseState, client: ClientProfile, now: datetime
) -> dict[str, Any]:
    messaging = case_type.messaging
    if milestone == "case_created":
        docs = [
            r.title
            for s in case_type.stages
            for e in s.elements
            if isinstance(e, DocumentsElement)
            for r in checklist_for(e, client)
        ]
        return {
            "product_name": messaging.product_name,
            "required_documents": docs or ["Identity and address documents"],
        }
    if milestone == "documents_received":
        received = state.fields.get("documents", {}).get("accepted_titles") or []
        return {"documents_received": received or ["Your documents"], "documents_outstanding": []}
    if milestone == "compliance_approved":
        checks = state.fields.get("_previous_stage_done") or []
        return {"approved_at": now, "checks_completed": checks or ["Compliance review"]}
    if milestone == "account_provisioning_started":
        return {"accounts": [messaging.product_name], "started_at": now}
    if milestone == "setup_completed":
        number = str(state.fields.get("account", {}).get("account_number") or "")
        digits = "".join(ch for ch in number if ch.isdigit())
        return {
            "account_name": messaging.product_name,
            "account_number_last4": digits[-4:].rjust(4, "0"),
            "completed_at": now,
        }
    if milestone == "welcome_package":
        return {
            "next_steps": [
                "Sign in to online banking",
                "Contact your relationship manager any time",
            ],
            "relationship_manager_name": messaging.relationship_manager_name,
            "relationship_manager_email": messaging.relationship_manager_email,
            "resources": [r.model_dump() for r in messaging.welcome_resources],
            "estimated_completion": now,
        }
    if milestone in ("case_update", "proposal"):
        return {"case_title": case_type.title}
    return {}


def staff_notice(
    *,
    milestone: str,
    role: str,
    state: CaseState,
    client: ClientProfile,
    stage: StageDef,
    now: datetime,
    extra: dict[str, Any],
) -> NotifyInput:
    """An internal notice to a role; the activity resolves the role's address."""
    context: dict[str, Any] = {"case_ref": state.case_ref, **extra}
    if milestone.startswith("sla_"):  # SLA notices also carry the case's status lines
        context |= {
            "client_name": client.name,
            "status": stage.title,
            "next_steps": [f"Open case {state.case_ref} and move {stage.title.lower()} forward"],
            "estimated_completion": None,
        }
    return NotifyInput(
        case_ref=state.case_ref,
        milestone=milestone,
        context=context,
        recipient=Recipient(name=role),
        channels=[],
        audience="staff",
        urgent=milestone not in ("sla_warning", "task_reminder"),
        occurrence=state.next_number(f"staff:{milestone}:{role}"),
    )


def person_notice(
    *, milestone: str, person: str, team: str | None, state: CaseState, extra: dict[str, Any]
) -> NotifyInput:
    """An internal notice to one person; the activity resolves their address (or their
    team's)."""
    return NotifyInput(
        case_ref=state.case_ref,
        milestone=milestone,
        context={"case_ref": state.case_ref, "person": person, "team": team, **extra},
        recipient=Recipient(name=f"{PERSON}{person}"),
        channels=[],
        audience="staff",
        urgent=False,
        occurrence=state.next_number(f"staff:{milestone}:{PERSON}{person}"),
    )
