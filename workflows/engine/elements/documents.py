"""``documents``: the client uploads what the checklist for their client type asks for; every
upload is verified by an activity; a document the machine cannot settle waits for a case
manager to accept or reject it (``review``); a case manager may waive verification (audited)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from schemas.case_state import ElementState
from schemas.casetype import DocumentsElement
from schemas.contracts import VERIFY_DOCUMENTS, VerificationResult, VerifyDocumentsInputV2
from schemas.documents import DocumentProblem, DocumentReview, DocumentVerdict
from schemas.engine_commands import ReviewDocument, WaiveDocuments
from workflows.engine import clock
from workflows.engine.elements.base import (
    Forbidden,
    WrongState,
    active,
    finish,
    open_element,
    resumed,
)
from workflows.engine.messages import checklist_for
from workflows.engine.runtime import CaseRuntime

VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
UPLOADS = "uploads"


async def run(case: CaseRuntime, spec: DocumentsElement, element: ElementState) -> None:
    checklist = checklist_for(spec, case.client)
    titles = {r.kind.value: r.title for r in checklist}
    if not resumed(element):  # a continued run keeps what was seen and what is still wrong
        open_element(case, element, role="client")
        element.problems = [f"{r.kind.value}:missing" for r in checklist]
    reminded = len(case.state.sla.fired) if case.state.sla else 0
    while not element.finished and not case.interrupted():
        uploads = case.state.counters.get(UPLOADS, 0)
        if uploads > element.uploads_seen:
            element.uploads_seen = uploads
            if not spec.verify:
                finish(case, element, by="client", outcome="received")
                break
            result = await workflow.execute_activity(
                VERIFY_DOCUMENTS,
                VerifyDocumentsInputV2(
                    case_ref=case.state.case_ref,
                    checklist=checklist,
                    as_of=case.now().date(),
                    reviews=dict(element.reviews),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=VERIFY_RETRY,
                result_type=VerificationResult,
            )
            if element.finished:  # a waiver arrived meanwhile
                break
            if result.complete:
                case.state.fields["documents"] = {
                    "accepted": [d.document_id for d in result.accepted],
                    "accepted_titles": [
                        titles.get(d.kind.value, d.kind.value) for d in result.accepted
                    ],
                    # read and judged by the machine, every one (an auto_complete fact)
                    "machine_verified": bool(result.accepted)
                    and all(d.verdict == DocumentVerdict.MACHINE_VERIFIED for d in result.accepted),
                    "waived": False,
                }
                finish(case, element, by="verification", outcome="verified")
                case.event(
                    "documents_verified",
                    "system",
                    {"documents": [d.document_id for d in result.accepted]},
                )
                break
            problems = [f"{p.kind.value}:{p.problem}" for p in result.problems]
            invalid = any(p.problem != "missing" for p in result.problems)
            if problems != element.problems and invalid and spec.notify_needed:
                _ask_again(case, spec, titles, result.problems)
            element.problems = problems
            element.in_review = [
                p.document_id
                for p in result.problems
                if p.verdict == DocumentVerdict.NEEDS_REVIEW and p.document_id
            ]
            case.projector.element(element)
        fired = len(case.state.sla.fired) if case.state.sla else 0
        if fired > reminded and spec.notify_needed:  # an SLA warning: remind the client
            reminded = fired
            missing = [
                {"name": titles.get(p.split(":")[0], p.split(":")[0]), "reason": "not received yet"}
                for p in element.problems
            ]
            if missing:
                _ask_again(case, spec, titles, None, missing=missing)
        seen = element.uploads_seen  # uploads that arrived during verification count as new
        fired_now = fired

        def changed(seen: int = seen, fired_now: int = fired_now) -> bool:
            sla_fired = len(case.state.sla.fired) if case.state.sla else 0
            return case.state.counters.get(UPLOADS, 0) > seen or sla_fired > fired_now

        await case.wait_until(lambda: element.finished or changed())
    accepted = element.finished and element.outcome in ("verified", "waived", "received")
    if accepted and spec.notify_received:
        case.tell_client(spec.notify_received)


def _ask_again(
    case: CaseRuntime,
    spec: DocumentsElement,
    titles: dict[str, str],
    problems: list[DocumentProblem] | None,
    *,
    missing: list[dict[str, str]] | None = None,
) -> None:
    needed = missing or [
        {"name": titles.get(p.kind.value, p.kind.value), "reason": p.detail} for p in problems or []
    ]
    sla = case.state.sla
    left = clock.remaining(sla, case.now(), case.calendar) if sla else None
    respond_by = case.now() + left if left is not None and left > timedelta(0) else None
    assert spec.notify_needed is not None
    case.tell_client(
        spec.notify_needed,
        extra={"documents_needed": needed, "respond_by": respond_by},
        urgent=True,
    )
    case.event("documents_needed", "system", {"documents": [n["name"] for n in needed]})


def waive(case: CaseRuntime, cmd: WaiveDocuments, *, apply: bool) -> str:
    element, spec = active(case, "documents", cmd.element, "documents")
    if cmd.role not in ("case_manager", "admin"):
        raise Forbidden("only a case manager may waive document verification")
    if not apply:
        return ""
    finish(case, element, by=cmd.actor, outcome="waived", note=cmd.note)
    documents = case.state.fields.setdefault("documents", {})
    documents.update({"waived": True, "machine_verified": False})
    case.event("documents_waived", cmd.actor, {"element": spec.key, "note": cmd.note})
    return "documents accepted by waiver; the case will move on"


def review(case: CaseRuntime, cmd: ReviewDocument, *, apply: bool) -> str:
    """A case manager accepts or rejects a document waiting for review; the documents are
    then verified again with that decision (a rejection asks the client for a new one)."""
    element, spec = active(case, "documents", cmd.element, "documents")
    if cmd.role not in ("case_manager", "admin"):
        raise Forbidden("only a case manager may review a document")
    if cmd.document_id not in element.in_review:
        raise WrongState(f"document {cmd.document_id} is not waiting for review on {spec.key}")
    if not apply:
        return ""
    decision = "accepted" if cmd.decision == "accept" else "rejected"
    element.reviews[cmd.document_id] = DocumentReview(
        decision=decision, by=cmd.actor, at=case.now(), note=cmd.note
    )
    element.in_review.remove(cmd.document_id)
    case.state.counters[UPLOADS] = case.state.counters.get(UPLOADS, 0) + 1  # verify again
    case.event(
        "document_reviewed",
        cmd.actor,
        {
            "element": spec.key,
            "document_id": cmd.document_id,
            "decision": decision,
            "note": cmd.note,
        },
    )
    case.touch()
    return f"document {decision}; the documents will be checked again"
