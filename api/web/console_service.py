"""What the case manager console shows and does, kept apart from the HTTP layer.

Sign-in, CSRF tokens and flash messages live in the signed session cookie. The pages read the
read model (Postgres) and, for a running case, the workflow's own ``state`` query. Commands go
through ``api.services.cases`` so the console and the JSON API apply the same pre-checks and the
workflow's validators have the last word.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import SESSION_USER
from api.services import cases as svc
from core.security import check_password, hash_password
from core.settings import ConsoleUser, Role, Settings
from schemas.case import CaseState, CaseView, StageInterval, TaskState
from schemas.commands import (
    CancelCase,
    CompleteTask,
    ComplianceDecision,
    DocumentsReceived,
    FinalSignOff,
    PauseRequest,
    ResumeRequest,
    SendBack,
)
from schemas.enums import CaseStatus, ClientTier, ClientType, Decision, SlaState, Stage
from store.models import (
    CallbackTaskRow,
    Case,
    CaseEvent,
    CaseTaskRow,
    DocumentRow,
    NotificationRow,
    ScreeningRow,
)
from workflows.onboarding import OnboardingCaseWorkflow

log = logging.getLogger(__name__)

SESSION_CSRF = "csrf"
SESSION_FLASH = "flash"
HOME = "/console"
LOGIN = "/console/login"
PAGE_SIZE = 25
SETTLE_SECONDS = 3.0  # how long a pause/resume waits for the workflow to apply it
CLOSED_STATUSES = [s.value for s in CaseStatus if s.is_closed]


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """Checked for unknown usernames, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_hex(16), salt="console-decoy")


# ------------------------------------------------------------------ session helpers
def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use; renewed at sign-in)."""
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def csrf_ok(request: Request, submitted: object) -> bool:
    """True if the form carried this session's token (compared in constant time)."""
    expected = request.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def flash(request: Request, message: str, level: str = "info") -> None:
    """Queue a one-time message for the next page (post/redirect/get)."""
    messages = list(request.session.get(SESSION_FLASH) or [])
    messages.append({"level": level, "message": message[:500]})
    request.session[SESSION_FLASH] = messages[-5:]


def pop_flashes(request: Request) -> list[dict[str, str]]:
    messages = request.session.pop(SESSION_FLASH, None) or []
    return [m for m in messages if isinstance(m, dict)]


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: only a same-site relative path, never another host.

    Refuses scheme-relative (``//evil``), backslash tricks (``/\\evil``), absolute URLs and
    control characters; anything doubtful goes to the queue.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return HOME
    if any(ch in value for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return HOME
    return value


def login_url(next_path: str | None = None) -> str:
    target = safe_next(next_path)
    return f"{LOGIN}?{urlencode({'next': target})}" if target != HOME else LOGIN


def authenticate(settings: Settings, username: str, password: str) -> ConsoleUser | None:
    """The console user if the password matches; None otherwise (no hint which part failed)."""
    user = settings.console_users.get(username.strip())
    stored = user.password_hash.get_secret_value() if user else _decoy_hash()
    matches = check_password(password, stored)
    return user if (user is not None and matches) else None


def sign_in(request: Request, username: str) -> None:
    """Start a fresh session for ``username`` (a new CSRF token: no session fixation)."""
    request.session.clear()
    request.session[SESSION_USER] = username.strip()
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


# ------------------------------------------------------------------ wording
STAGE_TITLES = {
    Stage.ACKNOWLEDGEMENT: "Acknowledgement",
    Stage.DOCUMENT_COLLECTION: "Document collection",
    Stage.COMPLIANCE_REVIEW: "Compliance review",
    Stage.SECURITY_REVIEW: "Security review",
    Stage.ACCOUNT_SETUP: "Account setup",
    Stage.FINAL_REVIEW: "Final review",
    Stage.WELCOME: "Welcome",
}
STATUS_TITLES = {
    CaseStatus.DRAFT: "Draft",
    CaseStatus.OPEN: "Open",
    CaseStatus.WAITING_ON_CLIENT: "Waiting on client",
    CaseStatus.PAUSED: "Paused",
    CaseStatus.COMPLETED: "Completed",
    CaseStatus.REJECTED: "Rejected",
    CaseStatus.CANCELLED: "Cancelled",
}
SLA_TITLES = {
    SlaState.ON_TRACK: "On track",
    SlaState.WARNING: "Warning",
    SlaState.AT_RISK: "At risk",
    SlaState.BREACHED: "Breached",
    SlaState.PAUSED: "Paused",
}
CLOSURE_CODES = {
    "client_withdrew": "Client withdrew",
    "client_unresponsive": "Client unresponsive",
    "duplicate_case": "Duplicate case",
    "fraud_suspected": "Fraud suspected",
    "opened_in_error": "Opened in error",
    "other": "Other",
}


def stage_title(value: str | Stage | None) -> str:
    if value is None:
        return "—"
    try:
        return STAGE_TITLES[Stage(value)]
    except ValueError:
        return str(value).replace("_", " ").capitalize()


def status_title(value: str | CaseStatus) -> str:
    try:
        return STATUS_TITLES[CaseStatus(value)]
    except ValueError:
        return str(value).replace("_", " ").capitalize()


def duration(seconds: float | None) -> str:
    """``2d 3h``, ``3h 12m``, ``4m 05s``: short enough for a badge."""
    if seconds is None:
        return "—"
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class Badge:
    """An SLA badge: a CSS modifier plus text, so colour is never the only signal."""

    state: str
    label: str
    detail: str | None = None


def sla_badge(
    state: SlaState | str | None, *, status: CaseStatus | str | None = None, live: CaseState | None
) -> Badge:
    """The badge for a case: live SLA (with time left) when running, else the read model's."""
    if status is not None and CaseStatus(status).is_closed:
        return Badge("closed", "Closed")
    if live is not None and live.sla is not None:
        state = live.sla.state
    if live is not None and live.status == CaseStatus.PAUSED:
        state = SlaState.PAUSED
    if state is None:
        return Badge("none", "No SLA")
    sla_state = SlaState(state)
    detail = None
    if live is not None and live.sla is not None:
        remaining = live.sla.remaining_seconds
        if sla_state == SlaState.PAUSED:
            detail = f"clock stopped, {duration(remaining)} left" if remaining else "clock stopped"
        elif remaining is not None and remaining > 0:
            detail = f"{duration(remaining)} left"
        elif remaining is not None:
            detail = f"overdue by {duration(remaining)}"
    return Badge(sla_state.value, SLA_TITLES[sla_state], detail)


def _describe(event: CaseEvent) -> str:
    """One line of plain English for an audit event."""
    d: Mapping[str, Any] = event.detail or {}
    who = event.actor
    reason = f": {d['reason']}" if d.get("reason") else ""
    kind = event.kind
    if kind == "case_opened":
        return f"Case opened by {who}"
    if kind == "paused":
        return f"Paused by {who}{reason}"
    if kind == "resumed":
        return f"Resumed by {who}{reason}"
    if kind == "sla_warning":
        share = d.get("threshold")
        used = f" ({share:.0%} of the SLA used)" if isinstance(share, int | float) else ""
        return f"SLA warning{used}"
    if kind == "sla_at_risk":
        return f"SLA at risk: {d.get('done', '?')} of {d.get('total', '?')} tasks done"
    if kind == "sla_breached":
        return "SLA breached"
    if kind == "sla_escalated":
        return (
            f"Escalated to {d.get('target', 'the next level')} (level {d.get('level', '?')}); "
            f"priority now {d.get('priority', '?')}"
        )
    if kind == "screening_completed":
        decision = str(d.get("decision", "done")).replace("_", " ")
        name = f" ({d['matched_name']})" if d.get("matched_name") else ""
        return f"Sanctions screening: {decision}{name}; risk {d.get('risk_level', '?')}"
    if kind == "compliance_auto_approved":
        return f"Compliance approved automatically{reason}"
    if kind == "compliance_decision":
        verb = "approved" if d.get("decision") == Decision.APPROVE.value else "rejected"
        return f"{who} {verb} the compliance review{reason}"
    if kind == "final_sign_off":
        note = f": {d['note']}" if d.get("note") else ""
        return f"Final sign-off by {who}{note}"
    if kind == "task_completed":
        note = f": {d['note']}" if d.get("note") else ""
        return f"{who} completed task {d.get('task', '?')}{note}"
    if kind == "documents_verified":
        return "Documents verified"
    if kind == "documents_needed":
        problems = d.get("problems") or []
        listed = "; ".join(str(p) for p in problems[:3]) if isinstance(problems, list) else ""
        return "Documents still needed" + (f": {listed}" if listed else "")
    if kind == "documents_waived":
        return f"Document verification waived by {who}: {d.get('note', '')}"
    if kind == "sent_back":
        return (
            f"Sent back by {who} from {stage_title(d.get('from'))} to "
            f"{stage_title(d.get('to'))}{reason}"
        )
    if kind == "side_effect_failed":
        return f"Automatic step failed: {d.get('what', '?')}"
    if kind.startswith("case_"):
        return f"Case {kind.removeprefix('case_')} by {who}{reason}"
    return f"{kind.replace('_', ' ').capitalize()} ({who})"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str
    actor: str | None = None


def build_timeline(
    stages: Sequence[StageInterval], events: Sequence[CaseEvent]
) -> list[TimelineEntry]:
    """Stage visits and audit events merged, newest first. Stage entries come from the
    intervals (which also know how the visit ended), so ``stage_entered`` events are skipped."""
    # (when, group, visit, step): on equal timestamps the case opening sorts oldest, then
    # stage visits in order (entered before left), then whatever else happened then.
    keyed: list[tuple[tuple[datetime, int, int, int], TimelineEntry]] = []
    for visit in stages:
        title = stage_title(visit.stage)
        entered = TimelineEntry(visit.entered_at, "stage", f"Entered {title}", "system")
        keyed.append(((visit.entered_at, 1, visit.seq, 0), entered))
        if visit.exited_at is not None:
            parts = [f"Left {title}", (visit.outcome or "closed").replace("_", " ")]
            if visit.sla_outcome and visit.sla_outcome != "none":
                parts.append(f"SLA {visit.sla_outcome}")
            if visit.active_seconds:
                parts.append(f"active {duration(visit.active_seconds)}")
            if visit.paused_seconds:
                parts.append(f"paused {duration(visit.paused_seconds)}")
            if visit.escalations:
                parts.append(f"{visit.escalations} escalation(s)")
            left = TimelineEntry(visit.exited_at, "stage", " · ".join(parts), "system")
            keyed.append(((visit.exited_at, 1, visit.seq, 1), left))
    for i, event in enumerate(events):
        if event.kind == "stage_entered":
            continue
        entry = TimelineEntry(event.occurred_at, event.kind, _describe(event), event.actor)
        keyed.append(((event.occurred_at, 0 if event.kind == "case_opened" else 2, 0, i), entry))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in keyed]


# ------------------------------------------------------------------ the queue
SORT_TITLES = {
    "updated": "Last updated",
    "created": "Created",
    "priority": "Priority",
    "stage": "Stage",
}


@dataclass
class QueueQuery:
    """Filters, sort and page of the queue, parsed leniently from the query string (a bad
    value is dropped, never a 422 page)."""

    statuses: list[CaseStatus] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    sla_states: list[SlaState] = field(default_factory=list)
    client_type: ClientType | None = None
    tier: ClientTier | None = None
    sort: str = "updated"
    descending: bool = True
    page: int = 1

    def params(self, **changes: Any) -> str:
        """The query string for this view with ``changes`` applied (links keep filters)."""
        values: dict[str, Any] = {
            "status": [s.value for s in self.statuses],
            "stage": [s.value for s in self.stages],
            "sla_state": [s.value for s in self.sla_states],
            "client_type": self.client_type.value if self.client_type else None,
            "tier": self.tier.value if self.tier else None,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            "page": self.page,
        }
        values.update(changes)
        pairs: list[tuple[str, str]] = []
        for key, value in values.items():
            if value is None or value == []:
                continue
            for item in value if isinstance(value, list) else [value]:
                pairs.append((key, str(item)))
        return urlencode(pairs)


def _enums(enum: type[Any], raw: Sequence[str]) -> list[Any]:
    out = []
    for value in raw:
        try:
            out.append(enum(value))
        except ValueError:
            continue
    return out


def parse_queue_query(query: Any) -> QueueQuery:
    """``query`` is Starlette's QueryParams (multi-valued)."""
    client_types = _enums(ClientType, [query.get("client_type", "")])
    tiers = _enums(ClientTier, [query.get("tier", "")])
    sort = query.get("sort", "updated")
    try:
        page = max(1, min(10_000, int(query.get("page", "1"))))
    except ValueError:
        page = 1
    return QueueQuery(
        statuses=_enums(CaseStatus, query.getlist("status")),
        stages=_enums(Stage, query.getlist("stage")),
        sla_states=_enums(SlaState, query.getlist("sla_state")),
        client_type=client_types[0] if client_types else None,
        tier=tiers[0] if tiers else None,
        sort=sort if sort in svc.CASE_SORTS else "updated",
        descending=query.get("dir", "desc") != "asc",
        page=page,
    )


@dataclass(frozen=True)
class QueueRow:
    case: Case
    badge: Badge


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int


async def load_queue(session: AsyncSession, query: QueueQuery) -> QueuePage:
    rows, total = await svc.query_cases(
        session=session,
        status_filter=query.statuses or None,
        stage=query.stages or None,
        client_type=query.client_type,
        tier=query.tier,
        sla_state=query.sla_states or None,
        sort=query.sort,
        descending=query.descending,
        limit=PAGE_SIZE,
        offset=(query.page - 1) * PAGE_SIZE,
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return QueuePage(
        rows=[QueueRow(c, sla_badge(c.sla_state, status=c.status, live=None)) for c in rows],
        total=total,
        page=query.page,
        pages=pages,
    )


# ------------------------------------------------------------------ the case page
@dataclass
class CaseDetail:
    view: CaseView
    live: CaseState | None
    live_note: str | None
    badge: Badge
    timeline: list[TimelineEntry]
    documents: list[DocumentRow]
    screenings: list[ScreeningRow]
    notifications: list[NotificationRow]
    tasks: list[TaskState]
    callbacks: list[CallbackTaskRow]
    temporal_url: str

    @property
    def running(self) -> bool:
        return self.live is not None

    @property
    def open_manual_tasks(self) -> list[TaskState]:
        """Tasks a person can complete right now (manual, open, current stage)."""
        if self.live is None:
            return []
        return [
            t
            for t in self.live.tasks
            if t.kind == "manual" and not t.done and t.stage == self.live.stage
        ]

    @property
    def earlier_stages(self) -> list[Stage]:
        """Stages of the plan before the current one: the send-back targets."""
        if self.live is None or self.live.stage not in self.live.stages_planned:
            return []
        return self.live.stages_planned[: self.live.stages_planned.index(self.live.stage)]


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.scalars(stmt)).all())


async def load_case(
    *, session: AsyncSession, temporal: Client, settings: Settings, ref: str
) -> CaseDetail:
    """Everything the case page shows; 404 (HTTPException) for an unknown case. The live
    state is best effort: if the workflow cannot answer, the page says so and falls back to
    the read model."""
    view = await svc.get_case(session=session, settings=settings, ref=ref)
    live: CaseState | None = None
    note: str | None = None
    if not view.status.is_closed and view.status != CaseStatus.DRAFT:
        try:
            handle = await svc.running_case(session=session, temporal=temporal, ref=ref)
            live = await svc.live_state(handle)
        except HTTPException as e:
            note = f"Live state unavailable: {e.detail}"
        except (RPCError, TimeoutError) as e:
            log.warning("console live_state failed case=%s error=%s", ref, type(e).__name__)
            note = "Live state unavailable: the workflow service did not answer."
    events = await _rows(
        session, select(CaseEvent).where(CaseEvent.case_ref == ref).order_by(CaseEvent.id)
    )
    documents = await _rows(
        session,
        select(DocumentRow)
        .where(DocumentRow.case_ref == ref)
        .order_by(DocumentRow.uploaded_at.desc()),
    )
    screenings = await _rows(
        session,
        select(ScreeningRow)
        .where(ScreeningRow.case_ref == ref)
        .order_by(ScreeningRow.screened_at.desc()),
    )
    notifications = await _rows(
        session,
        select(NotificationRow)
        .where(NotificationRow.case_ref == ref)
        .order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc())
        .limit(100),
    )
    callbacks = await _rows(
        session,
        select(CallbackTaskRow)
        .where(CallbackTaskRow.case_ref == ref)
        .order_by(CallbackTaskRow.due_at),
    )
    if live is not None:
        tasks = list(live.tasks)
    else:
        stored = await _rows(
            session,
            select(CaseTaskRow).where(CaseTaskRow.case_ref == ref).order_by(CaseTaskRow.id),
        )
        tasks = [TaskState.model_validate(t, from_attributes=True) for t in stored]
    return CaseDetail(
        view=view,
        live=live,
        live_note=note,
        badge=sla_badge(view.sla_state, status=view.status, live=live),
        timeline=build_timeline(live.history if live else view.stages, events),
        documents=documents,
        screenings=screenings,
        notifications=notifications,
        tasks=tasks,
        callbacks=callbacks,
        temporal_url=view.temporal_ui_url,
    )


# ------------------------------------------------------------------ actions
STAFF_DOERS = frozenset({Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER, Role.RELATIONSHIP_MANAGER})
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "pause": frozenset({Role.CASE_MANAGER}),
    "resume": frozenset({Role.CASE_MANAGER}),
    "documents": frozenset({Role.CASE_MANAGER}),
    "compliance": frozenset({Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER}),
    "task": STAFF_DOERS,
    "send_back": frozenset({Role.CASE_MANAGER}),
    "cancel": frozenset({Role.CASE_MANAGER}),
    "sign_off": frozenset({Role.CASE_MANAGER}),
}
"""The same roles as the JSON API's routes for the same commands (admin passes all)."""


def may(role: Role, action: str) -> bool:
    return role == Role.ADMIN or role in ACTION_ROLES[action]


class ActionRefused(Exception):
    """The form was incomplete or wrong; the message is shown to the user as is."""


def _text(form: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise ActionRefused(f"Please give a {name.replace('_', ' ')}.")
    if len(text) > 2000:
        raise ActionRefused(f"The {name.replace('_', ' ')} is too long (2000 characters at most).")
    return text or None


async def _settle(*, session: AsyncSession, temporal: Client, ref: str, paused: bool) -> None:
    """Wait (briefly) until the workflow has applied a pause/resume signal, so the page the
    user lands on already shows it. A slow worker only means a stale first view."""
    handle = await svc.running_case(session=session, temporal=temporal, ref=ref)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE_SECONDS):
            for _ in range(1000):  # bounded by the timeout; polling a query, not an event
                if ((await svc.live_state(handle)).status == CaseStatus.PAUSED) == paused:
                    return
                await asyncio.sleep(0.1)


async def perform(
    action: str,
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    actor: str,
    form: Mapping[str, Any],
    task_key: str | None = None,
) -> str:
    """Run one console command for ``actor``; returns the message to flash.

    Raises ``ActionRefused`` for a bad form and lets the services' HTTPException (404/409/422,
    with the workflow's own words) and RPCError through for the caller to show.
    """
    if action == "pause":
        reason = _text(form, "reason", required=True)
        assert reason is not None
        await svc.pause(
            session=session,
            temporal=temporal,
            ref=ref,
            body=PauseRequest(actor=actor, reason=reason),
        )
        await _settle(session=session, temporal=temporal, ref=ref, paused=True)
        return "Case paused: automation is halted and the SLA clock is stopped."
    if action == "resume":
        reason = _text(form, "reason") or "resumed"
        await svc.resume(
            session=session,
            temporal=temporal,
            ref=ref,
            body=ResumeRequest(actor=actor, reason=reason),
        )
        await _settle(session=session, temporal=temporal, ref=ref, paused=False)
        return "Case resumed: the SLA clock is running again."
    if action == "documents":
        note = _text(form, "note", required=True)
        accepted = await svc.documents_received(
            session=session,
            temporal=temporal,
            ref=ref,
            body=DocumentsReceived(actor=actor, waive_verification=True, note=note),
        )
        return accepted.message.capitalize() + "."
    if action == "compliance":
        raw = form.get("decision")
        if raw not in (Decision.APPROVE.value, Decision.REJECT.value):
            raise ActionRefused("Choose approve or reject.")
        decision = Decision(raw)
        reason = _text(form, "reason", required=decision == Decision.REJECT)
        await svc.update_case(
            session=session,
            temporal=temporal,
            ref=ref,
            update=OnboardingCaseWorkflow.decide_compliance,
            arg=ComplianceDecision(decision=decision, reviewer=actor, reason=reason),
        )
        return "Compliance review approved." if decision == Decision.APPROVE else "Case rejected."
    if action == "task":
        if not task_key:
            raise ActionRefused("No task given.")
        await svc.update_case(
            session=session,
            temporal=temporal,
            ref=ref,
            update=OnboardingCaseWorkflow.complete_task,
            arg=CompleteTask(task_key=task_key, actor=actor, note=_text(form, "note")),
        )
        return f"Task {task_key} completed."
    if action == "send_back":
        try:
            to_stage = Stage(str(form.get("to_stage", "")))
        except ValueError:
            raise ActionRefused("Choose the stage to send the case back to.") from None
        reason = _text(form, "reason", required=True)
        assert reason is not None
        await svc.update_case(
            session=session,
            temporal=temporal,
            ref=ref,
            update=OnboardingCaseWorkflow.send_back,
            arg=SendBack(to_stage=to_stage, actor=actor, reason=reason),
        )
        return f"Case sent back to {stage_title(to_stage)}."
    if action == "cancel":
        code = str(form.get("closure_code", ""))
        if code not in CLOSURE_CODES:
            raise ActionRefused("Choose a closure code.")
        reason = _text(form, "reason", required=code == "other")
        await svc.update_case(
            session=session,
            temporal=temporal,
            ref=ref,
            update=OnboardingCaseWorkflow.cancel,
            arg=CancelCase(closure_code=code, actor=actor, reason=reason),
        )
        return f"Case cancelled ({CLOSURE_CODES[code].lower()})."
    if action == "sign_off":
        await svc.update_case(
            session=session,
            temporal=temporal,
            ref=ref,
            update=OnboardingCaseWorkflow.sign_off,
            arg=FinalSignOff(reviewer=actor, note=_text(form, "note")),
        )
        return "Final review signed off."
    raise ActionRefused(f"Unknown action {action}.")


# ------------------------------------------------------------------ my tasks
@dataclass(frozen=True)
class MyTask:
    task: CaseTaskRow
    case: Case

    @property
    def current(self) -> bool:
        """True when the task belongs to the stage the case is in (it can be done now)."""
        return self.task.stage == self.case.stage


@dataclass(frozen=True)
class MyCallback:
    callback: CallbackTaskRow
    case: Case


async def load_my_tasks(session: AsyncSession, role: Role) -> tuple[list[MyTask], list[MyCallback]]:
    """Open manual tasks assigned to ``role`` on open cases (admin: every role's), and open
    client callbacks for relationship managers (and admin)."""
    stmt = (
        select(CaseTaskRow, Case)
        .join(Case, Case.ref == CaseTaskRow.case_ref)
        .where(
            CaseTaskRow.done.is_(False),
            CaseTaskRow.kind == "manual",
            Case.status.not_in(CLOSED_STATUSES),
        )
        .order_by(Case.updated_at.desc(), CaseTaskRow.id)
        .limit(500)
    )
    if role != Role.ADMIN:
        stmt = stmt.where(CaseTaskRow.assignee_role == role.value)
    tasks = [MyTask(task=t, case=c) for t, c in (await session.execute(stmt)).all()]
    callbacks: list[MyCallback] = []
    if role in (Role.RELATIONSHIP_MANAGER, Role.ADMIN):
        cb_stmt = (
            select(CallbackTaskRow, Case)
            .join(Case, Case.ref == CallbackTaskRow.case_ref)
            .where(CallbackTaskRow.status == "open", Case.status.not_in(CLOSED_STATUSES))
            .order_by(CallbackTaskRow.due_at)
            .limit(500)
        )
        if role != Role.ADMIN:
            cb_stmt = cb_stmt.where(CallbackTaskRow.assignee_role == role.value)
        callbacks = [
            MyCallback(callback=cb, case=c) for cb, c in (await session.execute(cb_stmt)).all()
        ]
    return tasks, callbacks
