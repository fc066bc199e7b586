"""What the case manager console shows and does, kept apart from the HTTP layer.

Sign-in, CSRF tokens and flash messages live in the signed session cookie. The pages read the
read model (Postgres) and the case's live ``CaseSnapshot`` (``api.services.engine``): one shape
for every case type, and for the frozen onboarding workflow's cases too. What the page offers
follows the snapshot's ``allowed_actions``; commands go through ``api.services.cases`` so the
console and the JSON API apply the same pre-checks, and the workflow's validators have the last
word. Element details only the case type knows (callback outcomes, checklist items, optional
elements, closure codes) come from the case type the case pinned (``api.web.case_engine``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from fastapi import HTTPException, Request
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import SESSION_USER, Caller
from api.services import cases as svc
from api.services import engine as eng
from api.services import sla as sla_service
from api.services import work as work_service
from api.web import case_engine as ce
from core.security import hash_fingerprint, hash_password, verify_and_update
from core.settings import ConsoleUser, Role, Settings
from playbooks.registry import CaseTypeRegistry
from schemas.case import CLOSED_STATUSES, AssignmentBody, CaseView, status_is_closed
from schemas.case_state import ElementState, ElementStatus
from schemas.casetype import (
    CaseType,
    ChecklistElement,
    Element,
    TaskElement,
)
from schemas.commands import PauseRequest, ResumeRequest
from schemas.contracts import RebalanceReport
from schemas.documents import DOCUMENT_ID_PATTERN
from schemas.engine_commands import AcknowledgeEscalation, ReopenCase, SkipElement, TickItem
from schemas.enums import ClientTier, ClientType, SlaState
from schemas.sla_explain import SlaExplanation
from schemas.snapshot import CaseSnapshot, StagePlan
from schemas.work import HOLDABLE_KINDS, WorkItem, may_hold
from store import console_credentials as credentials
from store import sanctions as sanctions_store
from store.models import (
    CallbackTaskRow,
    Case,
    CaseEvent,
    CaseTaskRow,
    DocumentRow,
    NotificationRow,
    SanctionsAlert,
    ScreeningRow,
)

log = logging.getLogger(__name__)

SESSION_CSRF = "csrf"
SESSION_FLASH = "flash"
HOME = "/console"
LOGIN = "/console/login"
PAGE_SIZE = 25
SETTLE_SECONDS = 3.0  # how long a pause/resume waits for a frozen case to apply its signal
KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
DOCUMENT_ID = re.compile(DOCUMENT_ID_PATTERN)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """Checked for unknown usernames, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_hex(16))  # argon2id, like every current hash


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


async def authenticate(
    settings: Settings, session: AsyncSession, username: str, password: str
) -> ConsoleUser | None:
    """The console user if the password matches; None otherwise (no hint which part failed).

    The password is checked against the user's upgraded hash in ``console_credentials`` when
    that row replaced the hash configured now, else against ``CONSOLE_USERS``. A configured
    hash in an outdated format (pbkdf2) that matches gets its argon2id replacement stored, so
    the next sign-in checks that. An unknown username takes the same path against a decoy
    hash, so a wrong name costs as long as a wrong password.
    """
    name = username.strip()
    user = settings.console_users.get(name)
    configured = user.password_hash.get_secret_value() if user else _decoy_hash()
    fingerprint = hash_fingerprint(configured)
    upgraded = await credentials.upgraded_hash(session, name, fingerprint)
    await session.commit()  # the connection goes back to the pool while the hash is checked
    matches, replacement = await asyncio.to_thread(
        verify_and_update, password, upgraded or configured
    )
    if user is None or not matches:
        return None
    if replacement is not None:
        try:
            await credentials.save_upgraded_hash(session, name, replacement, fingerprint)
        except SQLAlchemyError:  # the upgrade is best effort: it never blocks a sign-in
            log.warning("console password upgrade not saved user=%s", name, exc_info=True)
            await session.rollback()
        else:
            log.info("console password hash upgraded user=%s", name)
    return user


def sign_in(request: Request, username: str) -> None:
    """Start a fresh session for ``username`` (a new CSRF token: no session fixation)."""
    request.session.clear()
    request.session[SESSION_USER] = username.strip()
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


# ------------------------------------------------------------------ wording
STATUS_TITLES = {
    "draft": "Draft",
    "open": "Open",
    "waiting_on_client": "Waiting on client",
    "paused": "Paused",
    "resolved": "Resolved",
    "closed": "Closed",
    "completed": "Completed",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
}
SLA_TITLES = {
    SlaState.ON_TRACK: "On track",
    SlaState.WARNING: "Warning",
    SlaState.AT_RISK: "At risk",
    SlaState.BREACHED: "Breached",
    SlaState.PAUSED: "Paused",
}
CLOSURE_TITLES = {
    "client_withdrew": "Client withdrew",
    "client_unresponsive": "Client unresponsive",
    "customer_cancelled": "Customer cancelled",
    "customer_withdrew": "Customer withdrew",
    "duplicate": "Duplicate",
    "duplicate_case": "Duplicate case",
    "fraud_suspected": "Fraud suspected",
    "opened_in_error": "Opened in error",
    "other": "Other",
}
FROZEN_CLOSURE_CODES = (
    "client_withdrew",
    "client_unresponsive",
    "duplicate_case",
    "fraud_suspected",
    "opened_in_error",
    "other",
)
"""The frozen onboarding workflow's closure codes (engine cases use their case type's)."""
ELEMENT_STATUS_TITLES = {
    ElementStatus.PENDING.value: "Not started",
    ElementStatus.ACTIVE.value: "In progress",
    ElementStatus.DONE.value: "Done",
    ElementStatus.SKIPPED.value: "Skipped",
    ElementStatus.NOT_APPLICABLE.value: "Not applicable",
    ElementStatus.FAILED.value: "Failed",
}


def stage_title(value: str | None) -> str:
    """A stage key in words when no case type is at hand (``document_collection`` ->
    ``Document collection``)."""
    if value is None:
        return "—"
    return ce.humanise(str(value))


def status_title(value: str) -> str:
    return STATUS_TITLES.get(str(value), ce.humanise(str(value)))


def code_title(code: str) -> str:
    return CLOSURE_TITLES.get(code, ce.humanise(code))


class StageNamer(Protocol):
    def __call__(self, case_type: str | None, key: str | None) -> str: ...


def stage_namer(registry: CaseTypeRegistry | None) -> StageNamer:
    """``name(case_type, key)``: the stage's title in that case type (current file), else the
    key in words. For lists that mix case types (queue, my tasks)."""
    titles: dict[tuple[str, str], str] = {}
    if registry is not None:
        for type_name in registry.names():
            for stage in registry.get(type_name).stages:
                titles[(type_name, stage.key)] = stage.title

    def namer(case_type: str | None, key: str | None) -> str:
        if key is None:
            return "—"
        return titles.get((case_type or ce.ONBOARDING, key)) or stage_title(key)

    return namer


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


def _sla_state(value: str | None) -> SlaState | None:
    try:
        return SlaState(value) if value else None
    except ValueError:
        return None


def sla_badge(
    state: SlaState | str | None, *, status: str | None = None, live: CaseSnapshot | None
) -> Badge:
    """The badge for a case: live SLA (with time left) while it runs, else the read model's."""
    current = str(live.status) if live is not None else status
    if current is not None and (status_is_closed(current) or current == "resolved"):
        return Badge("closed", "Closed" if current != "resolved" else "Resolved")
    if live is not None and live.sla is not None:
        state = live.sla.state
    if current == "paused":
        state = SlaState.PAUSED
    sla_state = _sla_state(state)
    if sla_state is None:
        return Badge("none", "No SLA")
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


def _describe(event: CaseEvent, name: Callable[[str | None], str]) -> str:
    """One line of plain English for an audit event (frozen and engine vocabularies)."""
    d: Mapping[str, Any] = event.detail or {}
    who = event.actor
    reason = f": {d['reason']}" if d.get("reason") else ""
    note = f": {d['note']}" if d.get("note") else ""
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
        matched = f" ({d['matched_name']})" if d.get("matched_name") else ""
        return f"Sanctions screening: {decision}{matched}; risk {d.get('risk_level', '?')}"
    if kind == "sanctions_alert_opened":
        return (
            f"Sanctions alert {d.get('alert_ref', '?')} opened: matched "
            f"{d.get('matched_name', '?')} ({d.get('entry_id', '?')}, score {d.get('score', '?')})"
        )
    if kind in ("sanctions_alert_cleared", "sanctions_alert_escalated"):
        verb = "cleared" if kind.endswith("cleared") else "escalated"
        code = f" ({d['reason_code']})" if d.get("reason_code") else ""
        return f"Sanctions alert {d.get('alert_ref', '?')} {verb} by {who}{code}{note}"
    if kind == "sanctions_alert_escalation":
        done = "case paused" if d.get("action") == "paused" else "recorded on the case"
        return f"Sanctions alert {d.get('alert_ref', '?')} escalated by {d.get('by', who)}: {done}"
    if kind == "compliance_auto_approved":
        return f"Compliance approved automatically{reason}"
    if kind == "compliance_decision":
        verb = "approved" if d.get("decision") == "approve" else "rejected"
        return f"{who} {verb} the compliance review{reason}"
    if kind in ("approval_vote", "decision", "approved", "rejected") and d.get("decision"):
        verb = "approved" if d.get("decision") == "approve" else "rejected"
        code = f" ({d['reason_code']})" if d.get("reason_code") else ""
        what = f" {d['element']}" if d.get("element") else ""
        return f"{who} {verb}{what}{code}{note}"
    if kind == "final_sign_off":
        return f"Final sign-off by {who}{note}"
    if kind == "task_completed":
        outcome = f" ({d['outcome']})" if d.get("outcome") else ""
        return f"{who} completed task {d.get('task', d.get('element', '?'))}{outcome}{note}"
    if kind == "item_ticked":
        return f"{who} ticked {d.get('item', '?')} on {d.get('element', '?')}"
    if kind == "element_skipped":
        return f"{who} skipped {d.get('element', '?')}{reason}"
    if kind == "documents_verified":
        return "Documents verified"
    if kind == "documents_needed":
        problems = d.get("problems") or []
        listed = "; ".join(str(p) for p in problems[:3]) if isinstance(problems, list) else ""
        return "Documents still needed" + (f": {listed}" if listed else "")
    if kind == "documents_waived":
        return f"Document verification waived by {who}: {d.get('note', '')}"
    if kind in ("sent_back", "reopened"):
        verb = "Sent back" if kind == "sent_back" else "Reopened"
        return f"{verb} by {who} from {name(d.get('from'))} to {name(d.get('to'))}{reason}"
    if kind == "case_reopened":
        return f"Case reopened by {who} at {name(d.get('to'))}{reason}"
    if kind == "client_message":
        return f"The client wrote: {str(d.get('text', ''))[:300]}"
    if kind == "feedback":
        scores = ", ".join(f"{k} {d[k]}" for k in ("csat", "nps") if d.get(k) is not None)
        return f"Client feedback: {scores or 'no score'}"
    if kind == "side_effect_failed":
        return f"Automatic step failed: {d.get('what', '?')}"
    if kind in ("work_taken", "work_assigned", "work_reassigned", "work_released"):
        title = str(d.get("title") or d.get("item") or "work")
        title = title[:1].upper() + title[1:]
        via = " (rebalancing)" if d.get("via") == "rebalancing" else ""
        if kind == "work_taken":
            return f"{title} taken by {who}{reason}"
        if kind == "work_assigned":
            return f"{title} assigned to {d.get('to', '?')} by {who}{via}{reason}"
        if kind == "work_reassigned":
            return (
                f"{title} moved from {d.get('from', '?')} to {d.get('to', '?')} by {who}"
                f"{via}{reason}"
            )
        return f"{title} back in the team queue (released by {who}){reason}"
    if kind.startswith("case_"):
        return f"Case {kind.removeprefix('case_')} by {who}{reason}"
    return f"{kind.replace('_', ' ').capitalize()} ({who})"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str
    actor: str | None = None


class _Visit(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def stage(self) -> str: ...
    @property
    def entered_at(self) -> datetime: ...
    @property
    def exited_at(self) -> datetime | None: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def sla_outcome(self) -> str | None: ...
    @property
    def active_seconds(self) -> float | None: ...
    @property
    def paused_seconds(self) -> float | None: ...
    @property
    def escalations(self) -> int: ...


def build_timeline(
    stages: Sequence[_Visit],
    events: Sequence[CaseEvent],
    name: Callable[[str | None], str] = stage_title,
) -> list[TimelineEntry]:
    """Stage visits and audit events merged, newest first. Stage entries come from the
    visits (which also know how the visit ended), so ``stage_entered`` events are skipped."""
    # (when, group, visit, step): on equal timestamps the case opening sorts oldest, then
    # stage visits in order (entered before left), then whatever else happened then.
    keyed: list[tuple[tuple[datetime, int, int, int], TimelineEntry]] = []
    for visit in stages:
        title = name(visit.stage)
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
        entry = TimelineEntry(event.occurred_at, event.kind, _describe(event, name), event.actor)
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
    value is dropped, never a 422 page). Stages are any case type's stage keys."""

    statuses: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    case_types: list[str] = field(default_factory=list)
    sla_states: list[SlaState] = field(default_factory=list)
    client_type: ClientType | None = None
    tier: ClientTier | None = None
    sort: str = "updated"
    descending: bool = True
    page: int = 1

    def params(self, **changes: Any) -> str:
        """The query string for this view with ``changes`` applied (links keep filters)."""
        values: dict[str, Any] = {
            "status": list(self.statuses),
            "stage": list(self.stages),
            "case_type": list(self.case_types),
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


def _keys(raw: Sequence[str], limit: int = 50) -> list[str]:
    """Well-formed keys only (stage and case type names are lowercase keys), deduplicated."""
    return list(dict.fromkeys(v for v in raw if KEY.match(v)))[:limit]


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
        statuses=[s for s in _keys(query.getlist("status")) if s in STATUS_TITLES],
        stages=_keys(query.getlist("stage")),
        case_types=_keys(query.getlist("case_type")),
        sla_states=_enums(SlaState, query.getlist("sla_state")),
        client_type=client_types[0] if client_types else None,
        tier=tiers[0] if tiers else None,
        sort=sort if sort in svc.CASE_SORTS else "updated",
        descending=query.get("dir", "desc") != "asc",
        page=page,
    )


def stage_options(
    registry: CaseTypeRegistry | None, chosen: Sequence[str]
) -> list[tuple[str, str]]:
    """(key, label) of every stage of every case type, in each type's order (a key shared by
    several types appears once), plus any chosen key no type declares."""
    options: dict[str, str] = {}
    if registry is not None:
        for name in registry.names():
            case_type = registry.get(name)
            for stage in case_type.stages:
                options.setdefault(stage.key, stage.title)
    for key in chosen:
        options.setdefault(key, stage_title(key))
    return list(options.items())


def case_type_options(registry: CaseTypeRegistry | None) -> list[tuple[str, str]]:
    if registry is None:
        return []
    return [(name, registry.get(name).title) for name in registry.names()]


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
        sla_state=[s.value for s in query.sla_states] or None,
        case_type=query.case_types or None,
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
@dataclass(frozen=True)
class StageStep:
    """One stage of the pinned plan, for the stage bar."""

    key: str
    title: str
    state: str  # done | current | upcoming
    sla_seconds: float | None
    access: list[str]


@dataclass(frozen=True)
class ElementRow:
    """An element of the current stage visit with what its case type says about it."""

    state: ElementState
    spec: Element | None

    @property
    def key(self) -> str:
        return self.state.key

    @property
    def status(self) -> str:
        return str(self.state.status)

    @property
    def status_title(self) -> str:
        return ELEMENT_STATUS_TITLES.get(self.status, ce.humanise(self.status))

    @property
    def active(self) -> bool:
        return self.state.status == ElementStatus.ACTIVE

    @property
    def finished(self) -> bool:
        return self.state.finished

    @property
    def optional(self) -> bool:
        return bool(self.spec is not None and self.spec.optional)

    @property
    def outcomes(self) -> list[str]:
        """A callback task's outcomes to pick from (empty for a plain task)."""
        if isinstance(self.spec, TaskElement):
            return list(self.spec.outcomes)
        return []

    @property
    def items(self) -> list[tuple[str, str, str | None]]:
        """A checklist's (key, title, ticked by) items."""
        ticked = self.state.ticked or {}
        if isinstance(self.spec, ChecklistElement):
            return [(i.key, i.title, ticked.get(i.key)) for i in self.spec.items]
        return [(k, ce.humanise(k), v) for k, v in ticked.items()]


@dataclass
class CaseDetail:
    view: CaseView
    live: CaseSnapshot | None
    sla: SlaExplanation | None
    live_note: str | None
    badge: Badge
    timeline: list[TimelineEntry]
    documents: list[DocumentRow]
    screenings: list[ScreeningRow]
    notifications: list[NotificationRow]
    tasks: list[Any]  # ElementState (live) or CaseTaskRow (read model)
    callbacks: list[CallbackTaskRow]
    temporal_url: str
    case_type: CaseType | None = None
    case_type_title: str = ""
    case_type_version: str = ""
    plan: list[StagePlan] = field(default_factory=list)
    people: Mapping[str, ConsoleUser] = field(default_factory=dict)
    alerts: list[SanctionsAlert] = field(default_factory=list)  # sanctions monitoring

    @property
    def reviewed_alert(self) -> SanctionsAlert | None:
        """On a sanctions alert case: the alert it reviews."""
        return next((a for a in self.alerts if a.alert_case_ref == self.view.reference), None)

    @property
    def client_alerts(self) -> list[SanctionsAlert]:
        """On a client's case: the alerts raised against the client."""
        return [a for a in self.alerts if a.client_case_ref == self.view.reference]

    # -- state
    @property
    def status(self) -> str:
        return str(self.live.status if self.live is not None else self.view.status)

    @property
    def stage(self) -> str:
        return self.live.stage if self.live is not None else self.view.stage

    @property
    def running(self) -> bool:
        """The case takes commands now (a resolved case still takes a reopen)."""
        return self.live is not None and bool(self.live.allowed_actions)

    @property
    def paused(self) -> bool:
        return self.status == "paused"

    @property
    def closed(self) -> bool:
        return status_is_closed(self.status)

    def allows(self, action: str) -> bool:
        return self.live is not None and action in self.live.allowed_actions

    @property
    def in_review(self) -> set[str]:
        """Documents the case waits on a person to accept or reject (the newest of their kind
        that the machine could not settle; an older file of the kind is not asked about)."""
        if self.live is None or "review_document" not in self.live.allowed_actions:
            return set()
        return {doc for e in self.live.elements if e.kind == "documents" for doc in e.in_review}

    def stage_name(self, key: str | None) -> str:
        for plan in self.plan:
            if plan.key == key:
                return plan.title
        return stage_title(key)

    @property
    def stage_title(self) -> str:
        return self.stage_name(self.stage)

    # -- the plan
    @property
    def steps(self) -> list[StageStep]:
        keys = [p.key for p in self.plan]
        index = keys.index(self.stage) if self.stage in keys else -1
        resolved = self.status in ("resolved", "closed", "completed") and index == len(keys) - 1
        visited = {v.stage for v in (self.live.history if self.live else self.view.stages)}
        steps = []
        for i, p in enumerate(self.plan):
            if i == index and not resolved:
                state = "current"
            elif i < index or resolved or (index < 0 and p.key in visited):
                state = "done"
            else:
                state = "upcoming"
            steps.append(StageStep(p.key, p.title, state, p.sla_seconds, list(p.access)))
        return steps

    @property
    def earlier_stages(self) -> list[StagePlan]:
        """Stages of the plan before the current one: the send-back targets."""
        keys = [p.key for p in self.plan]
        if self.stage not in keys:
            return []
        return self.plan[: keys.index(self.stage)]

    @property
    def closure_codes(self) -> list[tuple[str, str]]:
        codes = (
            self.case_type.closure_codes
            if self.case_type is not None and self._engine
            else list(FROZEN_CLOSURE_CODES)
        )
        return [(c, code_title(c)) for c in codes]

    @property
    def reject_reasons(self) -> list[tuple[str, str]]:
        reasons = self.live.reject_reasons if self.live is not None else []
        return [(r, ce.humanise(r)) for r in reasons or ["other"]]

    @property
    def _engine(self) -> bool:
        return self.view.engine == eng.ENGINE and self.case_type is not None

    # -- the current stage's elements
    @property
    def elements(self) -> list[ElementRow]:
        if self.live is None:
            return []
        specs = ce.element_specs(self.case_type) if self._engine else {}
        return [
            ElementRow(e, specs.get(e.key)) for e in self.live.elements if e.stage == self.stage
        ]

    def _active(self, *kinds: str) -> list[ElementRow]:
        return [e for e in self.elements if e.active and e.state.kind in kinds]

    @property
    def open_tasks(self) -> list[ElementRow]:
        """Tasks a person can complete right now."""
        if not self.allows("complete_task"):
            return []
        return self._active("task")

    @property
    def approvals(self) -> list[ElementRow]:
        return self._active("approval") if self.allows("decide") else []

    @property
    def decision_open(self) -> bool:
        """An approval is open (engine) or the frozen case's review takes a decision."""
        return self.allows("decide")

    @property
    def checklists(self) -> list[ElementRow]:
        return self._active("checklist") if self.allows("tick") else []

    @property
    def skippable(self) -> list[ElementRow]:
        if not self.allows("skip"):
            return []
        return [e for e in self.elements if e.optional and not e.finished]

    @property
    def open_task_keys(self) -> set[str]:
        return {e.key for e in self.open_tasks}

    # -- who holds the work
    @property
    def stage_access(self) -> list[str]:
        for plan in self.plan:
            if plan.key == self.stage:
                return list(plan.access)
        return []

    @property
    def holdings(self) -> list[Holding]:
        """The case and each open step of its stage a person works on, with who holds it and
        who could (empty when the case takes no ``assign`` now)."""
        if self.live is None or not self.allows("assign"):
            return []
        access = self.stage_access
        live = self.live
        rows = [
            _holding(
                self.people,
                element=None,
                title="The case",
                kind="case",
                assignee=live.assignee,
                assigned_at=live.assigned_at,
                access=access,
            )
        ]
        for e in self.elements:
            state = e.state
            if state.kind not in HOLDABLE_KINDS or e.finished:
                continue
            rows.append(
                _holding(
                    self.people,
                    element=state.key,
                    title=state.title,
                    kind=state.kind,
                    assignee=state.assignee,
                    assigned_at=state.assigned_at,
                    access=access,
                    roles=state.roles or [r for r in (state.assignee_role,) if r],
                )
            )
        return rows


@dataclass(frozen=True)
class Holding:
    """The case or one open step, who holds it, and who may be given it."""

    element: str | None  # None: the case itself
    title: str
    kind: str
    assignee: str | None
    assignee_name: str | None
    assigned_at: datetime | None
    candidates: list[tuple[str, str]]  # (username, label) of people who may hold it

    @property
    def item(self) -> str:
        return self.element or "case"

    def may_hold(self, username: str | None) -> bool:
        """Whether ``username`` is among the people who may be given this work."""
        return username is not None and any(u == username for u, _ in self.candidates)


def person_label(people: Mapping[str, ConsoleUser], username: str | None) -> str | None:
    """``Maria Case-Manager (maria)``; an unknown username as it is."""
    if username is None:
        return None
    user = people.get(username)
    return f"{user.name} ({username})" if user is not None else username


def _holding(
    people: Mapping[str, ConsoleUser],
    *,
    element: str | None,
    title: str,
    kind: str,
    assignee: str | None,
    assigned_at: datetime | None,
    access: Sequence[str],
    roles: Sequence[str] = (),
) -> Holding:
    """A holding row; its candidates are the people ``schemas.work.may_hold`` lets hold it."""
    element_kind = None if element is None else kind
    candidates = [
        (username, f"{user.name} ({username} · {user.role.value.replace('_', ' ')})")
        for username, user in sorted(people.items())
        if username != assignee
        and may_hold(user.role.value, stage_access=access, element_kind=element_kind, roles=roles)
    ]
    return Holding(
        element=element,
        title=title,
        kind=kind,
        assignee=assignee,
        assignee_name=person_label(people, assignee),
        assigned_at=assigned_at,
        candidates=candidates,
    )


async def _rows(session: AsyncSession, stmt: Any) -> list[Any]:
    return list((await session.scalars(stmt)).all())


async def load_case(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    registry: CaseTypeRegistry | None,
    ref: str,
    caller: Caller | None = None,
) -> CaseDetail:
    """Everything the case page shows; HTTPException 404 for an unknown case and 403 for a
    stage the caller's role may not see. The live snapshot is best effort: if the workflow
    cannot answer, the page says so and falls back to the read model."""
    view = await svc.get_case(session=session, settings=settings, ref=ref, caller=caller)
    live: CaseSnapshot | None = None
    explained: SlaExplanation | None = None
    note: str | None = None
    closed = view.status.is_closed
    if str(view.status) != "draft":
        try:
            row = await eng.load_case(session=session, ref=ref, caller=caller)
            live = await eng.snapshot(temporal=temporal, row=row)
            if live.sla is not None and live.sla.budget_seconds and not closed and row.is_engine:
                with contextlib.suppress(HTTPException, RPCError, TimeoutError):
                    explained = await sla_service.explain_row(temporal=temporal, row=row)
        except HTTPException as e:
            if e.status_code == 403:
                raise
            note = None if closed else f"Live state unavailable: {e.detail}"
        except (RPCError, TimeoutError) as e:
            log.warning("console snapshot failed case=%s error=%s", ref, type(e).__name__)
            note = (
                None if closed else "Live state unavailable: the workflow service did not answer."
            )
    case_type = await ce.pinned_case_type(
        registry=registry,
        temporal=temporal,
        workflow_id=view.workflow_id,
        engine=view.engine,
        name=view.case_type,
        version=live.case_type_version if live is not None else view.case_type_version,
    )
    if live is not None:
        plan = ce.stage_plan(live, case_type)
    elif case_type is not None:
        plan = ce.plan_from_case_type(case_type)
    else:
        plan = []
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
    alerts = await sanctions_store.alerts_for_case(session, ref)
    tasks: list[Any]
    if live is not None:
        tasks = [e for e in live.elements if e.kind == "task"]
    else:
        tasks = await _rows(
            session,
            select(CaseTaskRow)
            .where(CaseTaskRow.case_ref == ref, CaseTaskRow.kind == "manual")
            .order_by(CaseTaskRow.id),
        )
    titles = {p.key: p.title for p in plan}

    def name(key: str | None) -> str:
        return titles.get(key or "") or stage_title(key)

    return CaseDetail(
        view=view,
        live=live,
        sla=explained,
        live_note=note,
        badge=sla_badge(view.sla_state, status=str(view.status), live=live),
        timeline=build_timeline(live.history if live else view.stages, events, name),
        documents=documents,
        screenings=screenings,
        notifications=notifications,
        tasks=tasks,
        callbacks=callbacks,
        temporal_url=view.temporal_ui_url,
        case_type=case_type,
        case_type_title=(case_type.title if case_type is not None else ce.humanise(view.case_type)),
        case_type_version=(
            (live.case_type_version if live is not None else None)
            or view.case_type_version
            or view.playbook_version
            or "—"
        ),
        plan=plan,
        people=settings.console_users,
        alerts=alerts,
    )


# ------------------------------------------------------------------ actions
STAFF_DOERS = frozenset({Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER, Role.RELATIONSHIP_MANAGER})
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "pause": frozenset({Role.CASE_MANAGER}),
    "resume": frozenset({Role.CASE_MANAGER}),
    "documents": frozenset({Role.CASE_MANAGER}),
    "review_document": frozenset({Role.CASE_MANAGER}),
    "decide": frozenset({Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER}),
    "task": STAFF_DOERS,
    "tick": STAFF_DOERS,
    "skip": frozenset({Role.CASE_MANAGER}),
    "send_back": frozenset({Role.CASE_MANAGER}),
    "acknowledge": STAFF_DOERS,
    "reopen": frozenset({Role.CASE_MANAGER}),
    "cancel": frozenset({Role.CASE_MANAGER}),
    "assign": STAFF_DOERS,
    "rebalance": frozenset({Role.CASE_MANAGER}),
}
"""The same roles as the JSON API's routes for the same commands (admin passes all). The
workflow's validators still check the stage's access and each element's own roles."""


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


def _key(form: Mapping[str, Any], name: str, message: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not KEY.match(value.strip()):
        raise ActionRefused(message)
    return value.strip()


async def _settle(*, session: AsyncSession, temporal: Client, ref: str, paused: bool) -> None:
    """Wait (briefly) until the case shows the pause/resume: an engine case applied it in its
    update already; a frozen case takes a signal. A slow worker only means a stale first view."""
    with contextlib.suppress(TimeoutError, HTTPException, RPCError):
        async with asyncio.timeout(SETTLE_SECONDS):
            row = await eng.load_case(session=session, ref=ref, caller=None)
            for _ in range(1000):  # bounded by the timeout; polling a query, not an event
                snap = await eng.snapshot(temporal=temporal, row=row)
                if (snap.status == "paused") == paused:
                    return
                await asyncio.sleep(0.1)


async def _settle_read_model(
    session: AsyncSession, stmt: Any, check: Callable[[Any], bool]
) -> None:
    """Wait (briefly) until the read model shows what the case just did: an engine case
    projects right after its update returned, so the page we go back to (My work lists from
    Postgres) would otherwise show the old state. A slow projection only means a stale view."""
    with contextlib.suppress(TimeoutError, SQLAlchemyError):
        async with asyncio.timeout(SETTLE_SECONDS):
            for _ in range(1000):  # bounded by the timeout
                value = await session.scalar(stmt)
                await session.rollback()  # no transaction held while sleeping
                if check(value):
                    return
                await asyncio.sleep(0.05)


def _step_column(ref: str, key: str, column: Any) -> Any:
    return (
        select(column)
        .where(CaseTaskRow.case_ref == ref, CaseTaskRow.key == key)
        .order_by(CaseTaskRow.id.desc())
        .limit(1)
    )


async def perform(
    action: str,
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    form: Mapping[str, Any],
    task_key: str | None = None,
    element: str | None = None,
    item: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Run one console command as ``caller``; returns the message to flash.

    Raises ``ActionRefused`` for a bad form and lets the services' HTTPException (403/404/409/
    422, with the workflow's own words) and RPCError through for the caller to show.
    """
    actor = caller.label
    common: dict[str, Any] = {"session": session, "temporal": temporal, "ref": ref}
    if action == "pause":
        reason = _text(form, "reason", required=True)
        assert reason is not None
        await svc.pause(**common, body=PauseRequest(actor=actor, reason=reason), caller=caller)
        await _settle(session=session, temporal=temporal, ref=ref, paused=True)
        return "Case paused: automation is halted and the SLA clock is stopped."
    if action == "resume":
        reason = _text(form, "reason") or "resumed"
        await svc.resume(**common, body=ResumeRequest(actor=actor, reason=reason), caller=caller)
        await _settle(session=session, temporal=temporal, ref=ref, paused=False)
        return "Case resumed: the SLA clock is running again."
    if action == "documents":
        note = _text(form, "note", required=True)
        assert note is not None
        chosen = form.get("element")
        result = await svc.waive_documents(
            **common,
            caller=caller,
            note=note,
            element=chosen if isinstance(chosen, str) and KEY.match(chosen) else None,
        )
        return result.message[:1].upper() + result.message[1:] + "."
    if action == "review_document":
        document_id = form.get("document_id")
        if not isinstance(document_id, str) or not DOCUMENT_ID.match(document_id):
            raise ActionRefused("Choose a document to review.")
        verdict = form.get("decision")
        if verdict not in ("accept", "reject"):
            raise ActionRefused("Choose accept or reject.")
        note = _text(form, "note")
        if verdict == "reject" and note is None:
            raise ActionRefused("Please say why: the client reads it.")
        result = await svc.review_document(
            **common,
            caller=caller,
            document_id=document_id,
            decision=str(verdict),
            note=note,
        )
        return result.message[:1].upper() + result.message[1:] + "."
    if action == "decide":
        decision = form.get("decision")
        if decision not in ("approve", "reject"):
            raise ActionRefused("Choose approve or reject.")
        note = _text(form, "note") or _text(form, "reason")
        reason_code = None
        if decision == "reject":
            reason_code = _key(form, "reason_code", "Choose a reason for the rejection.")
            if note is None:
                raise ActionRefused("Please give a note saying why.")
        chosen = form.get("element")
        result = await svc.decide(
            **common,
            caller=caller,
            decision=str(decision),
            element=chosen if isinstance(chosen, str) and KEY.match(chosen) else None,
            reason_code=reason_code,
            note=note,
        )
        return "Approved." if decision == "approve" else f"Rejected ({reason_code})."
    if action == "task":
        if not task_key:
            raise ActionRefused("No task given.")
        outcome = form.get("outcome")
        if (
            outcome is not None
            and outcome != ""
            and not (isinstance(outcome, str) and KEY.match(outcome))
        ):
            raise ActionRefused("Choose the outcome from the list.")
        await svc.complete_task(
            **common,
            task_key=task_key,
            caller=caller,
            note=_text(form, "note"),
            outcome=outcome or None,
        )
        await _settle_read_model(
            session,
            _step_column(ref, task_key, CaseTaskRow.status),
            lambda status: status not in ("pending", "active"),
        )
        return f"Task {task_key} completed."
    if action == "tick":
        if not element or not item:
            raise ActionRefused("No checklist item given.")
        await svc.engine_command(
            **common, caller=caller, name=eng.TICK, model=TickItem, element=element, item=item
        )
        return f"Ticked {ce.humanise(item).lower()}."
    if action == "skip":
        if not element:
            raise ActionRefused("No step given.")
        reason = _text(form, "reason", required=True)
        await svc.engine_command(
            **common,
            caller=caller,
            name=eng.SKIP,
            model=SkipElement,
            element=element,
            reason=reason,
        )
        return f"Skipped {ce.humanise(element).lower()}."
    if action == "send_back":
        to_stage = _key(form, "to_stage", "Choose the stage to send the case back to.")
        reason = _text(form, "reason", required=True)
        assert reason is not None
        await svc.send_back(**common, caller=caller, to_stage=to_stage, reason=reason)
        return f"Case sent back to {stage_title(to_stage)}."
    if action == "acknowledge":
        result = await svc.engine_command(
            **common,
            caller=caller,
            name=eng.ACKNOWLEDGE_ESCALATION,
            model=AcknowledgeEscalation,
            note=_text(form, "note"),
        )
        return result.message[:1].upper() + result.message[1:] + "."
    if action == "reopen":
        at = (
            _key(form, "to_stage", "Choose the stage to reopen the case at.")
            if form.get("to_stage")
            else None
        )
        reason = _text(form, "reason", required=True)
        result = await svc.engine_command(
            **common,
            caller=caller,
            name=eng.REOPEN,
            model=ReopenCase,
            to_stage=at,
            reason=reason,
        )
        return result.message[:1].upper() + result.message[1:] + "."
    if action == "cancel":
        code = form.get("closure_code")
        if not isinstance(code, str) or not KEY.match(code):
            raise ActionRefused("Choose a closure code.")
        reason = _text(form, "reason", required=code == "other")
        await svc.cancel(**common, caller=caller, closure_code=code, reason=reason)
        return f"Case cancelled ({code_title(code).lower()})."
    if action == "assign":
        if settings is None:
            raise ActionRefused("Assignment is not available here.")
        body = assignment_body(form)
        result = await work_service.assign(**common, settings=settings, caller=caller, body=body)
        holder = caller.username if body.take else body.assignee
        column = (
            select(Case.assignee).where(Case.ref == ref)
            if body.element is None
            else _step_column(ref, body.element, CaseTaskRow.assignee)
        )
        await _settle_read_model(session, column, lambda now: now == holder)
        return result.message[:1].upper() + result.message[1:] + "."
    raise ActionRefused(f"Unknown action {action}.")


ASSIGN_MODES = ("take", "assign", "release")


def assignment_body(form: Mapping[str, Any]) -> AssignmentBody:
    """The console's assignment form (``mode`` take | assign | release, ``element`` empty for
    the case itself, ``assignee`` for assign, ``reason``) as the API's body."""
    mode = form.get("mode")
    if mode not in ASSIGN_MODES:
        raise ActionRefused("Choose take, assign or release.")
    chosen = form.get("element")
    element = None
    if isinstance(chosen, str) and chosen.strip() and chosen.strip() != "case":
        element = _key(form, "element", "There is no such step.")
    reason = _text(form, "reason")
    if mode == "take":
        return AssignmentBody(element=element, take=True, reason=reason)
    if mode == "release":
        return AssignmentBody(element=element, reason=reason)
    assignee = form.get("assignee")
    if not isinstance(assignee, str) or not assignee.strip():
        raise ActionRefused("Choose the person to assign it to.")
    return AssignmentBody(element=element, assignee=assignee.strip()[:120], reason=reason)


# ------------------------------------------------------------------ my tasks
CLIENT_KINDS = ("documents", "client_acceptance")  # the client's to do, not staff's


@dataclass(frozen=True)
class MyTask:
    task: CaseTaskRow
    case: Case

    @property
    def current(self) -> bool:
        """True when the task belongs to the stage the case is in and is open now."""
        return self.task.stage == self.case.stage and self.task.status in (None, "active")


@dataclass(frozen=True)
class MyCallback:
    callback: CallbackTaskRow
    case: Case


async def load_my_tasks(session: AsyncSession, role: Role) -> tuple[list[MyTask], list[MyCallback]]:
    """Open tasks, approvals and checklists assigned to ``role`` on open cases of any type
    (admin: every role's), and open client callbacks for relationship managers (and admin)."""
    closed = sorted(CLOSED_STATUSES)
    stmt = (
        select(CaseTaskRow, Case)
        .join(Case, Case.ref == CaseTaskRow.case_ref)
        .where(
            CaseTaskRow.done.is_(False),
            CaseTaskRow.kind == "manual",
            or_(CaseTaskRow.element_kind.is_(None), CaseTaskRow.element_kind.not_in(CLIENT_KINDS)),
            or_(CaseTaskRow.status.is_(None), CaseTaskRow.status.in_(("active", "pending"))),
            Case.status.not_in(closed),
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
            .where(CallbackTaskRow.status == "open", Case.status.not_in(closed))
            .order_by(CallbackTaskRow.due_at)
            .limit(500)
        )
        if role != Role.ADMIN:
            cb_stmt = cb_stmt.where(CallbackTaskRow.assignee_role == role.value)
        callbacks = [
            MyCallback(callback=cb, case=c) for cb, c in (await session.execute(cb_stmt)).all()
        ]
    return tasks, callbacks


# ------------------------------------------------------------------ work queues
@dataclass(frozen=True)
class WorkRow:
    """One item of My work or a team queue, with its badge and, for a task, its outcomes."""

    item: WorkItem
    badge: Badge
    outcomes: list[str] = field(default_factory=list)
    assignee_name: str | None = None

    @property
    def testid(self) -> str:
        return f"{self.item.case_ref}-{self.item.item}"

    @property
    def element(self) -> str:
        """The form's ``element`` value ("" for the case itself)."""
        return "" if self.item.item == "case" else self.item.item

    @property
    def kind_title(self) -> str:
        return "Case" if self.item.kind == "case" else ce.humanise(self.item.kind)


@dataclass(frozen=True)
class MyWork:
    mine: list[WorkRow]
    queue: list[WorkRow]
    holds_work: bool  # False for roles that watch (operators)


def _work_rows(
    items: Sequence[WorkItem],
    registry: CaseTypeRegistry | None,
    people: Mapping[str, ConsoleUser],
) -> list[WorkRow]:
    specs: dict[str, dict[str, Element]] = {}
    rows = []
    for item in items:
        outcomes: list[str] = []
        if item.kind == "task":
            if item.case_type not in specs:
                specs[item.case_type] = ce.element_specs(
                    ce.current_case_type(registry, item.case_type)
                )
            spec = specs[item.case_type].get(item.item)
            if isinstance(spec, TaskElement):
                outcomes = list(spec.outcomes)
        rows.append(
            WorkRow(
                item=item,
                badge=sla_badge(item.sla_state, status=None, live=None),
                outcomes=outcomes,
                assignee_name=person_label(people, item.assignee),
            )
        )
    return rows


async def load_my_work(
    *,
    session: AsyncSession,
    settings: Settings,
    registry: CaseTypeRegistry | None,
    caller: Caller,
) -> MyWork:
    """What I hold (soonest due first) and my team's queue: work nobody holds that my role may
    take. Operators watch; they hold no work, so their queue is empty."""
    people = settings.console_users
    mine: list[WorkItem] = []
    if caller.username is not None:
        mine = (await work_service.held_by(session=session, username=caller.username)).items
    holds = may(caller.role, "assign")
    waiting: list[WorkItem] = []
    if holds:
        found = await work_service.queue(session=session, role=caller.role.value)
        waiting = [i for i in found.items if i.holdable_by(caller.role.value)]
    return MyWork(
        mine=_work_rows(mine, registry, people),
        queue=_work_rows(waiting, registry, people),
        holds_work=holds,
    )


@dataclass(frozen=True)
class WorkloadPage:
    load: work_service.Workload
    rebalancing: work_service.Rebalancing

    def team_title(self, team: str) -> str:
        return ce.humanise(team)


async def load_workload(*, session: AsyncSession, settings: Settings) -> WorkloadPage:
    load = await work_service.workload(session=session, settings=settings, now=datetime.now(UTC))
    return WorkloadPage(load=load, rebalancing=await work_service.rebalancing(session=session))


def rebalance_summary(report: RebalanceReport) -> str:
    """The flash after a manual run: ``Rebalancing run 12: moved 1, proposed 2, refused 0.``"""
    return (
        f"Rebalancing run {report.run_id}: moved {report.moved}, proposed {report.proposed}"
        f", refused {report.refused}."
    )
