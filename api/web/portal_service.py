"""The client portal's logic: who a link belongs to, where the case stands, and the client's
own actions (uploads, preferences, the message centre, NPS).

The portal token (``core.security``) is the only credential a client has. It names one case,
so every query here is scoped to ``PortalCase.ref`` and nothing else; the token never works as
an API key or a console session. Errors come back as ``PortalProblem`` with a message fit for
a client, never the internal detail (which is logged instead).

The page reads the case's ``CaseSnapshot`` (``api.services.engine``): one shape for every case
type and for the frozen onboarding workflow's cases. Progress follows the stages the case
PINNED when it opened (the snapshot's plan, with each stage's ``client_status``), never the
current case type file. Documents are asked for only while a documents element is active.

Estimated completion is computed here, not copied from the latest notification: now + what
is left of the current stage's SLA (from the live workflow when it runs, else the full
budget) + the SLAs of the stages still to come. A paused, resolved or closed case has none.

The client's own commands (answer a proposal, write a message, feedback) go to an engine case
as actor ``client`` with role ``client`` (``api.web.case_engine.client_update``).

The message centre lists the case's in-app notifications (``notifications`` rows with channel
``in_app`` and audience ``client``), newest first and a page at a time, and shows one message's
plain-text body (``body_text``, escaped by the template). The stored ``body_html`` is an
e-mail document (inline styles, a remote logo) and is never rendered here. Reading a message
changes state only on a POST (open, mark read, mark all read), never on a GET.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import HTTPException, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from temporalio.client import Client
from temporalio.service import RPCError

from api.services import documents as documents_svc
from api.services import engine as eng
from api.services import notifications as notifications_svc
from api.web import case_engine as ce
from core.portal_links import make_portal_link  # noqa: F401 - re-exported
from core.security import InvalidPortalToken, read_portal_token
from core.settings import Settings
from playbooks.registry import CaseTypeRegistry
from schemas.case import status_is_closed
from schemas.case_state import ElementStatus
from schemas.casetype import CaseType
from schemas.client import ContactPreferences
from schemas.documents import DocumentKind, DocumentRequirement
from schemas.engine_commands import ClientMessage, Feedback, ProposalResponse
from schemas.enums import Channel, Stage
from schemas.snapshot import CaseSnapshot, StagePlan
from store.models import CallbackTaskRow, Case, DocumentRow, NotificationRow, NpsResponse

log = logging.getLogger(__name__)

LIVE_STATE_TIMEOUT_SECONDS = 4.0
NPS_FOLLOW_UP_STAGE = "nps_follow_up"
NPS_FOLLOW_UP_BUSINESS_DAYS = 2
NPS_DETRACTOR_MAX = 6
NPS_COMMENT_MAX_CHARS = 2000

MESSAGE_MAX_CHARS = 2000
CHANNEL_NAMES: dict[Channel, str] = {
    Channel.EMAIL: "Email",
    Channel.SMS: "Text message (SMS)",
    Channel.IN_APP: "Messages in this portal",
}

LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
    "pl": "Polski",
}

DOCUMENT_STATUS_WORDS: dict[str, str] = {
    "missing": "Not received yet",
    "received": "Received - we are checking it",
    "accepted": "Accepted",
    "needs_review": "Received - our team is checking it",
    "rejected": "Not accepted - please upload a new one",
}
NEEDED_STATUSES = ("missing", "rejected")
"""Checklist lines the client must act on; ``needs_review`` waits for our team (the client may
still send a clearer copy)."""
NOTHING_NEEDED = "Nothing needed from you right now."

NOTICES: dict[str, str] = {
    "uploaded": "Thank you - we received your document.",
    "upload_duplicate": "We already had this file; nothing else is needed for it.",
    "preferences_saved": "Your contact preferences are saved.",
    "marked_read": "Marked as read.",
    "all_read": "All your messages are marked as read.",
    "nps_thanks": "Thank you for your feedback.",
    "nps_reopened": (
        "Thank you for telling us. We are sorry we fell short: your case is open again and "
        "we will be in touch."
    ),
    "proposal_accepted": "Thank you - we have your answer and will go ahead.",
    "proposal_rejected": "Thank you - we will look at this again and come back to you.",
    "message_sent": "Thank you - your message is on your case.",
    "message_reopened": "Thank you - your case is open again and we will reply.",
    "nps_already": "Thanks - your answer was already recorded.",
    "too_large": "That file is too large. Please upload a smaller file.",
}
"""Messages shown after a redirect; only these fixed texts, never text from the URL."""


class PortalProblem(Exception):
    """Something the client can fix or should know, in words fit to show them."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class PortalLinkInvalid(Exception):
    """The link does not grant a case. Deliberately says nothing about why."""


class CsrfRejected(Exception):
    """A portal form came without the token its page carried."""


# ---------------------------------------------------------------------------- links and tokens
@dataclass(frozen=True)
class PortalCase:
    """The one case a portal request may touch, and the token that granted it."""

    ref: str
    token: str


def grant_for(token: str, settings: Settings) -> str:
    """The case ref a token names, or ``PortalLinkInvalid`` (tampered, expired, malformed)."""
    try:
        grant = read_portal_token(token, secret=settings.portal_secret.get_secret_value())
    except InvalidPortalToken as exc:
        log.info("portal link refused: %s", exc)  # the reason is logged, never shown
        raise PortalLinkInvalid from None
    return grant.case_ref


async def resolve_portal_case(
    *, session: AsyncSession, settings: Settings, token: str
) -> PortalCase:
    """The token's case, which must exist; otherwise ``PortalLinkInvalid``."""
    ref = grant_for(token, settings)
    if await session.scalar(select(Case.ref).where(Case.ref == ref)) is None:
        log.info("portal link for an unknown case refused")
        raise PortalLinkInvalid
    return PortalCase(ref=ref, token=token)


def csrf_token(settings: Settings, portal_token: str) -> str:
    """A form token bound to this portal link: a page of one case cannot post to another."""
    key = settings.session_secret.get_secret_value().encode()
    return hmac.new(key, b"portal-csrf\x00" + portal_token.encode(), hashlib.sha256).hexdigest()


def check_csrf(settings: Settings, portal_token: str, given: str | None) -> None:
    """``CsrfRejected`` unless ``given`` is this link's form token."""
    if not given or not hmac.compare_digest(given, csrf_token(settings, portal_token)):
        raise CsrfRejected


# ---------------------------------------------------------------------------- views
@dataclass(frozen=True)
class StepView:
    stage: str
    name: str
    state: str  # done | current | upcoming


@dataclass(frozen=True)
class ChecklistItem:
    kind: str
    title: str
    status: str  # missing | received | accepted | needs_review | rejected
    status_words: str
    reason: str | None
    filename: str | None
    hint: str | None


@dataclass
class PortalPage:
    """Everything the portal page shows, for one case."""

    case_ref: str
    client_name: str
    case_type_title: str
    status_key: str
    status_words: str
    step: int
    total: int
    done_steps: int
    steps: list[StepView]
    remaining: list[str]
    estimated_completion: datetime | None
    checklist: list[ChecklistItem]
    needed: list[ChecklistItem]
    accepts_uploads: bool
    upload_kinds: list[tuple[str, str]]
    max_upload_mb: float
    preferences: ContactPreferences
    callback_options: list[tuple[str, str]]
    preferences_open: bool
    messages: MessageList
    nps_state: str  # not_yet | open | recorded
    completed: bool
    closed: bool
    proposal: str | None = None  # an open proposal the client may accept or reject
    takes_messages: bool = False
    channel_names: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    time_zone: str | None = None  # the client's IANA zone (None: UTC), for the dates shown


@dataclass(frozen=True)
class _Row:
    """What the page needs from the case row, copied out: the services the page calls give
    the session's connection back (which expires loaded rows) before they await Temporal."""

    ref: str
    status: str
    stage: str
    engine: str
    case_type: str
    case_type_version: str | None
    workflow_id: str
    client_name: str
    client_type: str
    profile: dict[str, Any]
    data: dict[str, Any]
    resolution: str | None

    @classmethod
    def of(cls, case: Case) -> _Row:
        return cls(
            ref=case.ref,
            status=case.status,
            stage=case.stage,
            engine=case.engine or eng.FROZEN,
            case_type=case.case_type or ce.ONBOARDING,
            case_type_version=case.case_type_version,
            workflow_id=case.workflow_id,
            client_name=case.client_name,
            client_type=case.client_type,
            profile=dict(case.profile or {}),
            data=dict(case.data or {}),
            resolution=case.resolution,
        )


async def _live(session: AsyncSession, temporal: Client, row: _Row) -> CaseSnapshot | None:
    """The case's live snapshot (running or closed, either engine), or None (not started, or
    the workflow does not answer): the page then shows the read model."""
    if row.status == "draft":
        return None
    try:
        case_row = await eng.load_case(session=session, ref=row.ref, caller=None)
        async with asyncio.timeout(LIVE_STATE_TIMEOUT_SECONDS):
            return await eng.snapshot(temporal=temporal, row=case_row)
    except (HTTPException, RPCError, TimeoutError) as exc:
        log.info("portal falls back to read model case=%s reason=%s", row.ref, type(exc).__name__)
        return None


def _is_completed(status_key: str, resolution: str | None) -> bool:
    """Done as the client asked: the frozen workflow's ``completed``, or an engine case
    resolved (or closed after it) with resolution ``completed``."""
    if status_key == "completed":
        return True
    return status_key in ("resolved", "closed") and resolution == "completed"


def _status_words(
    status_key: str,
    *,
    resolution: str | None,
    stage: StagePlan | None,
    awaiting: str | None,
    proposal: bool,
    documents_wanted: bool,
    onboarding: bool,
) -> str:
    """Where the case stands, as a client would say it (the stage's own ``client_status``
    while it runs)."""
    if status_key == "paused":
        return "Paused by our team - we will be in touch"
    if _is_completed(status_key, resolution):
        return "Complete - welcome aboard" if onboarding else "Complete"
    if status_key == "rejected" or (status_key in ("resolved", "closed") and resolution):
        if onboarding:
            return "Closed - we could not complete your application"
        return "Closed - we could not go ahead with your request"
    if status_key in ("cancelled", "closed"):
        return "Closed"
    if status_key == "draft":
        return "We are opening your case"
    if proposal:
        return "Waiting for your answer"
    if documents_wanted and awaiting in (None, "client documents"):
        return "Waiting for your documents"
    if status_key == "waiting_on_client":
        return "Waiting for you"
    if stage is not None and stage.client_status:
        return stage.client_status
    return "In progress"


def _hint(req: DocumentRequirement) -> str | None:
    """What the document must show for verification to accept it (we read it from the
    document itself; the dates typed on the form are not needed)."""
    parts = []
    if req.kind == DocumentKind.GOVERNMENT_ID:
        parts.append(
            "A clear photo or scan of the whole photo page, including the two lines of "
            "letters and <<< at the bottom; it must still be valid and in your name."
        )
    elif req.needs_expiry:
        parts.append("It must still be valid.")
    if req.max_age_days is not None:
        parts.append(
            f"It must show your name and be dated within the last {req.max_age_days} days."
        )
    return " ".join(parts) or None


async def checklist_for(
    session: AsyncSession, ref: str, requirements: list[DocumentRequirement]
) -> list[ChecklistItem]:
    """Each checklist line with the newest upload of its kind and what verification said."""
    if not requirements:
        return []
    rows = (
        await session.scalars(
            select(DocumentRow)
            .where(DocumentRow.case_ref == ref)
            .order_by(DocumentRow.uploaded_at.desc(), DocumentRow.id.desc())
            .execution_options(populate_existing=True)
        )
    ).all()
    newest: dict[str, DocumentRow] = {}
    for row in rows:
        newest.setdefault(row.kind, row)
    items = []
    for req in requirements:
        latest = newest.get(req.kind.value)
        state = "missing" if latest is None else latest.status
        if state not in DOCUMENT_STATUS_WORDS:
            state = "received"
        items.append(
            ChecklistItem(
                kind=req.kind.value,
                title=req.title,
                status=state,
                status_words=DOCUMENT_STATUS_WORDS[state],
                reason=(
                    latest.status_detail
                    if latest is not None and state in ("rejected", "needs_review")
                    else None
                ),
                filename=latest.filename if latest is not None else None,
                hint=_hint(req),
            )
        )
    return items


def _wanted_documents(
    row: _Row, live: CaseSnapshot | None, case_type: CaseType | None, *, finished: bool
) -> tuple[bool, list[DocumentRequirement]]:
    """(asking, requirements): the documents the case asks the client for right now. Only an
    active documents element asks (one accepted or waived asks for nothing); a frozen case or
    one the workflow cannot tell us about asks while it sits in a stage that collects them."""
    if finished:
        return False, []
    if live is not None and live.engine == eng.ENGINE:
        for element in live.elements:
            if element.kind == "documents" and element.status == ElementStatus.ACTIVE:
                reqs = ce.document_requirements(case_type, row.client_type, element=element.key)
                return True, reqs
        return False, []
    stage = live.stage if live is not None else row.stage
    if stage in ce.documents_stages(case_type):
        return True, ce.document_requirements(case_type, row.client_type)
    return False, []


def _stage_plan(
    row: _Row, live: CaseSnapshot | None, case_type: CaseType | None
) -> tuple[list[StagePlan], str]:
    """The stages this case goes through (pinned: from its snapshot) and the current one."""
    if live is not None:
        plans = ce.stage_plan(live, case_type)
        fields: dict[str, Any] = dict(live.fields)
        visited = [v.stage for v in live.history]
        current = live.stage
    else:
        plans = ce.plan_from_case_type(case_type) if case_type is not None else []
        fields = {**row.data, "client": row.profile}
        visited = []
        current = row.stage
    fields.setdefault("client", row.profile)
    planned = ce.routed_plan(plans, case_type, fields=fields, visited=visited, current=current)
    if current not in [p.key for p in planned]:
        planned.append(
            StagePlan(key=current, title=ce.humanise(current), owner_role="case_manager")
        )
    return planned, current


def _step_name(plan: StagePlan) -> str:
    return plan.client_status or plan.title


async def build_page(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    registry: CaseTypeRegistry | None,
    ref: str,
) -> PortalPage:
    """The portal page of one case of any type: its pinned plan and live state from the
    case's snapshot, the read model when the workflow cannot answer."""
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:  # deleted since the token was checked
        raise PortalLinkInvalid
    row = _Row.of(case)
    live = await _live(session, temporal, row)
    case_type = await ce.pinned_case_type(
        registry=registry,
        temporal=temporal,
        workflow_id=row.workflow_id,
        engine=row.engine,
        name=row.case_type,
        version=live.case_type_version if live is not None else row.case_type_version,
    )
    status_key = str(live.status) if live is not None else row.status
    resolution = live.resolution if live is not None else row.resolution
    planned, stage = _stage_plan(row, live, case_type)
    closed = status_is_closed(status_key)
    finished = closed or status_key == "resolved"
    completed = _is_completed(status_key, resolution)
    keys = [p.key for p in planned]
    index = keys.index(stage)
    done_steps = len(planned) if completed else index

    steps = []
    for i, plan in enumerate(planned):
        state = "done" if i < done_steps else ("current" if i == index else "upcoming")
        steps.append(StepView(stage=plan.key, name=_step_name(plan), state=state))
    remaining = [] if finished else [_step_name(p) for p in planned[index + 1 :]]

    eta: datetime | None = None
    paused = status_key == "paused" or (live is not None and live.paused_by)
    if not finished and not paused and status_key != "draft":
        current = timedelta(seconds=planned[index].sla_seconds or 0)
        if live is not None and live.sla is not None and live.sla.remaining_seconds is not None:
            current = timedelta(seconds=max(live.sla.remaining_seconds, 0))
        later = sum((p.sla_seconds or 0 for p in planned[index + 1 :]), 0.0)
        eta = datetime.now(UTC) + current + timedelta(seconds=later)
        learned = live.eta if live is not None else None
        if learned is not None and learned.p50 >= datetime.now(UTC):
            eta = learned.p50  # the case's own estimate (from history), while it holds

    asking, requirements = _wanted_documents(row, live, case_type, finished=finished)
    checklist = await checklist_for(session, ref, requirements) if asking else []
    needed = [c for c in checklist if c.status in NEEDED_STATUSES]
    upload_reqs = requirements or ce.document_requirements(case_type, row.client_type)
    kinds = [(r.kind.value, r.title) for r in upload_reqs]
    kinds.append((DocumentKind.OTHER.value, "Other document"))
    collects = bool(ce.documents_stages(case_type)) or row.engine != eng.ENGINE

    try:
        prefs = ContactPreferences.model_validate(row.profile.get("contact_preferences") or {})
    except ValidationError:
        prefs = ContactPreferences()

    survey = completed or (row.engine == eng.ENGINE and finished and status_key != "cancelled")
    nps_state = "not_yet"
    if survey:
        answered = await session.scalar(select(NpsResponse.id).where(NpsResponse.case_ref == ref))
        nps_state = "recorded" if answered is not None else "open"

    allowed = set(live.allowed_actions) if live is not None else set()
    proposal = live.proposal if live is not None and eng.RESPOND_TO_PROPOSAL in allowed else None
    return PortalPage(
        case_ref=ref,
        client_name=row.client_name,
        case_type_title=case_type.title if case_type is not None else ce.humanise(row.case_type),
        status_key=status_key,
        status_words=_status_words(
            status_key,
            resolution=resolution,
            stage=planned[index],
            awaiting=live.awaiting if live is not None else None,
            proposal=proposal is not None,
            documents_wanted=asking,
            onboarding=row.case_type == ce.ONBOARDING,
        ),
        step=len(planned) if completed else index + 1,
        total=len(planned),
        done_steps=done_steps,
        steps=steps,
        remaining=remaining,
        estimated_completion=eta,
        checklist=checklist,
        needed=needed,
        # the upload form only while the case asks for documents and one is not yet accepted
        accepts_uploads=not finished
        and collects
        and asking
        and any(c.status != "accepted" for c in checklist),
        upload_kinds=kinds,
        max_upload_mb=round(settings.max_upload_bytes / (1024 * 1024), 1),
        preferences=prefs,
        callback_options=[(p.key, _step_name(p)) for p in planned],
        preferences_open=not closed and status_key != "draft",
        messages=await list_messages(session=session, ref=ref, limit=CARD_MESSAGES),
        nps_state=nps_state,
        completed=survey,
        closed=finished,
        proposal=proposal,
        takes_messages=eng.CLIENT_MESSAGE in allowed,
        channel_names={c.value: n for c, n in CHANNEL_NAMES.items()},
        languages=dict(LANGUAGES),
        time_zone=client_zone(row.profile),
    )


# ---------------------------------------------------------------------------- client actions
def _friendly_upload_error(exc: HTTPException, settings: Settings) -> PortalProblem:
    code = exc.status_code
    if code == status.HTTP_413_CONTENT_TOO_LARGE:
        mb = round(settings.max_upload_bytes / (1024 * 1024), 1)
        return PortalProblem(code, f"That file is too large. The limit is {mb} MB.")
    if code == status.HTTP_415_UNSUPPORTED_MEDIA_TYPE:
        return PortalProblem(
            code, "We can only accept PDF, PNG or JPEG files. Please upload one of those."
        )
    if code == status.HTTP_409_CONFLICT:
        return PortalProblem(code, "Your case is closed, so it no longer takes documents.")
    log.warning("portal upload refused status=%s", code)
    return PortalProblem(code, "We could not take that file. Please try again.")


def _friendly_date_error(exc: RequestValidationError) -> PortalProblem:
    for err in exc.errors():
        loc = err.get("loc", ())
        field_name = loc[-1] if loc else ""
        label = "expiry date" if field_name == "expires_on" else "issue date"
        if "before" in str(err.get("msg", "")):
            return PortalProblem(422, "The expiry date cannot be before the issue date.")
        return PortalProblem(422, f"Please enter the {label} as a date (YYYY-MM-DD).")
    return PortalProblem(422, "Please check the dates and try again.")


async def upload(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    ref: str,
    file: UploadFile | None,
    kind: str | None,
    issued_on: str | None,
    expires_on: str | None,
) -> str:
    """Store the client's file through the documents service; returns the notice code."""
    try:
        doc_kind = DocumentKind(kind or "")
    except ValueError:
        raise PortalProblem(422, "Please choose which document you are uploading.") from None
    if file is None or not (file.filename or "").strip():
        raise PortalProblem(422, "Please choose a file to upload.")
    try:
        result = await documents_svc.upload_document(
            session=session,
            temporal=temporal,
            blobs=documents_svc.get_blob_store(settings),
            settings=settings,
            ref=ref,
            upload=file,
            kind=doc_kind,
            issued_on=(issued_on or "").strip() or None,
            expires_on=(expires_on or "").strip() or None,
            uploaded_by="client",
        )
    except HTTPException as exc:
        raise _friendly_upload_error(exc, settings) from None
    except RequestValidationError as exc:
        raise _friendly_date_error(exc) from None
    log.info("portal upload case=%s kind=%s created=%s", ref, doc_kind.value, result.created)
    return "uploaded" if result.created else "upload_duplicate"


async def save_preferences(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    registry: CaseTypeRegistry | None,
    ref: str,
    channels: list[str],
    language: str | None,
    callback_stages: list[str],
) -> str:
    """Validate the form in the client's terms, then use the preferences service."""
    chosen = [c for c in (c.strip() for c in channels) if c]
    if not chosen:
        raise PortalProblem(422, "Please choose at least one way to contact you.")
    if len(set(chosen)) != len(chosen):
        raise PortalProblem(422, "Each contact channel can be chosen only once.")
    if any(c not in {ch.value for ch in Channel} for c in chosen):
        raise PortalProblem(422, "Please choose contact channels from the list.")
    if language not in LANGUAGES:
        raise PortalProblem(422, "Please choose a language from the list.")
    case = await session.get(Case, ref)
    assert case is not None
    case_type = ce.current_case_type(registry, case.case_type)
    allowed = {s.key for s in case_type.stages} if case_type is not None else set()
    if (case.engine or eng.FROZEN) != eng.ENGINE:
        allowed |= {s.value for s in Stage}
    if any(s not in allowed for s in callback_stages):
        raise PortalProblem(422, "Please choose callback steps from the list.")
    prefs = ContactPreferences(
        channels=[Channel(c) for c in chosen],
        language=language,
        callback_stages=sorted(set(callback_stages)),
    )
    try:
        await notifications_svc.update_preferences(
            session=session, temporal=temporal, ref=ref, prefs=prefs
        )
    except HTTPException as exc:
        if exc.status_code == status.HTTP_409_CONFLICT:
            raise PortalProblem(
                409, "Your case is not active right now, so preferences cannot be changed."
            ) from None
        raise
    return "preferences_saved"


# ---------------------------------------------------------------------------- message centre
INBOX_PAGE_SIZE = 50
"""Messages per page of the centre; an "Older messages" link pages on from there."""
CARD_MESSAGES = 5
"""The newest messages the case page shows (with a link to the centre)."""
PREVIEW_CHARS = 140
MAX_ROW_ID = 2**63 - 1  # a Postgres bigint: a larger id is simply not found
MESSAGE_NOT_FOUND = "That message was not found."


@dataclass(frozen=True)
class MessageSummary:
    """One line of the message centre."""

    id: int
    subject: str
    created_at: datetime
    preview: str
    read: bool


@dataclass(frozen=True)
class MessageList:
    """A page of the client's in-app messages, newest first, and the counts of all of them."""

    items: list[MessageSummary]
    unread: int
    total: int
    newest_id: int | None
    """The newest message of the case when the page was built: "Mark all as read" stops
    there, so a message that arrives meanwhile stays unread."""
    older: int | None = None
    """The ``before`` cursor of the next (older) page; None on the last page."""
    paged: bool = False
    """An older page (not the newest messages)."""


@dataclass(frozen=True)
class MessageDetail:
    id: int
    subject: str
    created_at: datetime
    read_at: datetime | None
    body: str

    @property
    def read(self) -> bool:
        return self.read_at is not None


@dataclass(frozen=True)
class CentrePage:
    """The message centre of one case (no workflow needed: it reads only Postgres)."""

    case_ref: str
    client_name: str
    time_zone: str | None
    messages: MessageList


@dataclass(frozen=True)
class MessagePage:
    case_ref: str
    client_name: str
    time_zone: str | None
    message: MessageDetail
    unread: int


def client_zone(profile: Mapping[str, Any] | None) -> str | None:
    """The client's time zone from the profile when it names a real IANA zone, else None
    (dates are then shown in UTC): a bad stored value never breaks the page."""
    name = (profile or {}).get("time_zone")
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _inbox_where(ref: str) -> tuple[ColumnElement[bool], ...]:
    """The client's inbox: the case's in-app notifications meant for the client (as in
    ``api.services.notifications.inbox``); staff notices never show in the portal."""
    return (
        NotificationRow.case_ref == ref,
        NotificationRow.channel == "in_app",
        NotificationRow.audience == "client",
    )


def _row_id(value: int | str | None) -> int | None:
    """A notification id as the client sent it, or None when it cannot be one."""
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or len(value) > 19:
            return None
        value = int(value)
    if value is None or not 1 <= value <= MAX_ROW_ID:
        return None
    return value


def preview_of(body: str, limit: int = PREVIEW_CHARS) -> str:
    """A one-line preview: the text after the greeting ("Dear …,"), whitespace collapsed,
    cut at a word boundary."""
    lines = [line.strip() for line in body.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    if lines and lines[0].startswith("Dear ") and lines[0].endswith(","):
        lines.pop(0)
    text = " ".join(" ".join(lines).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def _subject(value: str | None) -> str:
    return (value or "").strip() or "Update on your case"


async def unread_count(*, session: AsyncSession, ref: str) -> int:
    """How many of the client's messages are unread (the portal header's badge)."""
    count = await session.scalar(
        select(func.count())
        .select_from(NotificationRow)
        .where(*_inbox_where(ref), NotificationRow.read_at.is_(None))
    )
    return int(count or 0)


async def list_messages(
    *,
    session: AsyncSession,
    ref: str,
    before: int | str | None = None,
    limit: int = INBOX_PAGE_SIZE,
) -> MessageList:
    """A page of the client's messages, newest first (by time, then id). ``before`` is the
    id of the last message of the previous page; one that is not this case's (or not a
    number) gives the newest page, never someone else's."""
    where = _inbox_where(ref)
    query = select(
        NotificationRow.id,
        NotificationRow.subject,
        func.left(NotificationRow.body_text, 4 * PREVIEW_CHARS + 200).label("head"),
        NotificationRow.created_at,
        NotificationRow.read_at,
    ).where(*where)
    cursor_id = _row_id(before)
    cursor_at = None
    if cursor_id is not None:
        cursor_at = await session.scalar(
            select(NotificationRow.created_at).where(NotificationRow.id == cursor_id, *where)
        )
    if cursor_at is not None:
        query = query.where(
            tuple_(NotificationRow.created_at, NotificationRow.id) < tuple_(cursor_at, cursor_id)
        )
    rows = (
        await session.execute(
            query.order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc()).limit(
                limit + 1
            )
        )
    ).all()
    total, unread, newest = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(NotificationRow.read_at.is_(None)),
                func.max(NotificationRow.id),
            ).where(*where)
        )
    ).one()
    shown = rows[:limit]
    return MessageList(
        items=[
            MessageSummary(
                id=r.id,
                subject=_subject(r.subject),
                created_at=r.created_at,
                preview=preview_of(r.head or ""),
                read=r.read_at is not None,
            )
            for r in shown
        ],
        unread=int(unread or 0),
        total=int(total or 0),
        newest_id=newest,
        older=shown[-1].id if len(rows) > limit else None,
        paged=cursor_at is not None,
    )


async def _client(session: AsyncSession, ref: str) -> tuple[str, str | None]:
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:  # deleted since the token was checked
        raise PortalLinkInvalid
    return case.client_name, client_zone(case.profile)


async def message_centre(
    *, session: AsyncSession, ref: str, before: int | str | None = None
) -> CentrePage:
    name, zone = await _client(session, ref)
    return CentrePage(
        case_ref=ref,
        client_name=name,
        time_zone=zone,
        messages=await list_messages(session=session, ref=ref, before=before),
    )


async def message_page(*, session: AsyncSession, ref: str, notification_id: int) -> MessagePage:
    """One message in full, for reading. Reading it here changes nothing (a GET): the centre's
    "open" button marks it read before it shows it."""
    name, zone = await _client(session, ref)
    wanted = _row_id(notification_id)
    row = None
    if wanted is not None:
        row = (
            await session.execute(
                select(
                    NotificationRow.id,
                    NotificationRow.subject,
                    NotificationRow.created_at,
                    NotificationRow.read_at,
                    NotificationRow.body_text,
                ).where(NotificationRow.id == wanted, *_inbox_where(ref))
            )
        ).one_or_none()
    if row is None:
        raise PortalProblem(404, MESSAGE_NOT_FOUND)
    return MessagePage(
        case_ref=ref,
        client_name=name,
        time_zone=zone,
        message=MessageDetail(
            id=row.id,
            subject=_subject(row.subject),
            created_at=row.created_at,
            read_at=row.read_at,
            body=(row.body_text or "").strip(),
        ),
        unread=await unread_count(session=session, ref=ref),
    )


async def mark_read(*, session: AsyncSession, ref: str, notification_id: int) -> str:
    """Mark one of the case's messages read (the first read time is kept); 404 otherwise."""
    wanted = _row_id(notification_id)
    if wanted is None:
        raise PortalProblem(404, MESSAGE_NOT_FOUND)
    try:
        await notifications_svc.mark_read(session=session, ref=ref, notification_id=wanted)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            raise PortalProblem(404, MESSAGE_NOT_FOUND) from None
        raise
    return "marked_read"


async def mark_all_read(*, session: AsyncSession, ref: str, upto: str | None) -> str:
    """Mark the client's unread messages read, up to ``upto`` (the newest one their page
    showed) when given, so one that arrived since stays unread."""
    query = update(NotificationRow).where(*_inbox_where(ref), NotificationRow.read_at.is_(None))
    if (upto or "").strip():
        newest = _row_id(upto)
        if newest is None:
            raise PortalProblem(422, "Please reload the page and try again.")
        query = query.where(NotificationRow.id <= newest)
    await session.execute(query.values(read_at=datetime.now(UTC)))
    await session.commit()
    return "all_read"


def add_business_days(start: datetime, days: int) -> datetime:
    """``days`` working days after ``start`` (Saturday and Sunday skipped), same time of day."""
    current = start
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def parse_score(raw: str | None) -> int:
    text = (raw or "").strip()
    if not text:
        raise PortalProblem(422, "Please choose a score from 0 to 10.")
    try:
        score = int(text)
    except ValueError:
        raise PortalProblem(422, "Please choose a score from 0 to 10.") from None
    if not 0 <= score <= 10:
        raise PortalProblem(422, "Please choose a score from 0 to 10.")
    return score


async def submit_nps(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    score_raw: str | None,
    comment_raw: str | None,
) -> str:
    """Record the one NPS answer of a finished case; a detractor opens an RM follow-up. An
    engine case also hears it as ``feedback``: a low score on a resolved case reopens it (when
    its case type says so).

    Both inserts are idempotent (unique case_ref; unique case+stage), so a double submit or
    a retry records one answer and one follow-up.
    """
    case = await session.get(Case, ref, populate_existing=True)
    assert case is not None
    engine_case = (case.engine or eng.FROZEN) == eng.ENGINE
    status_key = case.status
    if not (
        _is_completed(status_key, case.resolution)
        or (engine_case and status_key in ("resolved", "closed"))
    ):
        what = "onboarding" if (case.case_type or ce.ONBOARDING) == ce.ONBOARDING else "case"
        raise PortalProblem(
            409, f"The survey opens once your {what} is complete. Thank you for your patience."
        )
    score = parse_score(score_raw)
    comment = (comment_raw or "").strip() or None
    if comment is not None and len(comment) > NPS_COMMENT_MAX_CHARS:
        raise PortalProblem(
            422, f"Please keep your comment under {NPS_COMMENT_MAX_CHARS} characters."
        )
    now = datetime.now(UTC)
    inserted = await session.scalar(
        insert(NpsResponse)
        .values(case_ref=ref, score=score, comment=comment, submitted_at=now)
        .on_conflict_do_nothing(index_elements=["case_ref"])
        .returning(NpsResponse.id)
    )
    if inserted is not None and score <= NPS_DETRACTOR_MAX:
        await session.execute(
            insert(CallbackTaskRow)
            .values(
                case_ref=ref,
                stage=NPS_FOLLOW_UP_STAGE,
                assignee_role="relationship_manager",
                due_at=add_business_days(now, NPS_FOLLOW_UP_BUSINESS_DAYS),
                status="open",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["case_ref", "stage"])
        )
    await session.commit()
    if inserted is None:
        return "nps_already"
    log.info("nps recorded case=%s score=%d follow_up=%s", ref, score, score <= 6)
    if engine_case and status_key == "resolved":
        return await _tell_engine_feedback(
            session=session, temporal=temporal, ref=ref, score=score, comment=comment
        )
    return "nps_thanks"


async def _tell_engine_feedback(
    *, session: AsyncSession, temporal: Client, ref: str, score: int, comment: str | None
) -> str:
    """The NPS as the engine's ``feedback`` update. The answer is already recorded, so a
    refusal (the case closed meanwhile) or an outage is logged, not shown."""
    feedback = Feedback(
        actor=ce.CLIENT_ACTOR,
        role=ce.CLIENT_ROLE,
        nps=score,
        comment=comment[:NPS_COMMENT_MAX_CHARS] if comment else None,
    )
    try:
        result = await ce.client_update(
            session=session, temporal=temporal, ref=ref, name=eng.FEEDBACK, arg=feedback
        )
    except HTTPException as exc:
        log.warning("nps feedback not sent case=%s status=%s", ref, exc.status_code)
        return "nps_thanks"
    return "nps_reopened" if "reopened" in result.message else "nps_thanks"


_REFUSALS = {
    status.HTTP_409_CONFLICT: "Your case cannot take this right now. Please reload the page.",
    status.HTTP_403_FORBIDDEN: "This is not something you can do on your case.",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "Please check what you entered and try again.",
}


def _command(model: type[BaseModel], **fields: Any) -> BaseModel:
    """A client command (actor and role ``client``); a problem is the client's to fix."""
    try:
        return model.model_validate({"actor": ce.CLIENT_ACTOR, "role": ce.CLIENT_ROLE, **fields})
    except ValidationError as exc:
        log.info("portal command refused: %s", [e.get("type") for e in exc.errors()])
        raise PortalProblem(422, "Please check what you entered and try again.") from None


async def _send(
    *, session: AsyncSession, temporal: Client, ref: str, name: str, arg: BaseModel, what: str
) -> str:
    """Send the client's command; the workflow's refusal becomes a message fit for a client
    (409 wrong state, 403 not theirs, 422 invalid), its detail only in the log."""
    try:
        result = await ce.client_update(
            session=session, temporal=temporal, ref=ref, name=name, arg=arg
        )
    except HTTPException as exc:
        log.info("portal %s refused case=%s status=%s", what, ref, exc.status_code)
        if exc.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            raise PortalProblem(
                503, "We could not reach your case just now. Please try again."
            ) from None
        raise PortalProblem(
            exc.status_code,
            _REFUSALS.get(exc.status_code, "We could not do that. Please try again."),
        ) from None
    return result.message


async def respond_to_proposal(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    decision: str | None,
    reason_raw: str | None,
) -> str:
    """The client accepts or rejects the open proposal (a rejection says why)."""
    if decision not in ("accept", "reject"):
        raise PortalProblem(422, "Please choose whether you accept.")
    reason = (reason_raw or "").strip() or None
    if decision == "reject" and reason is None:
        raise PortalProblem(422, "Please tell us why you do not accept, so we can put it right.")
    if reason is not None and len(reason) > MESSAGE_MAX_CHARS:
        raise PortalProblem(422, f"Please keep your answer under {MESSAGE_MAX_CHARS} characters.")
    arg = _command(ProposalResponse, accept=decision == "accept", reason=reason)
    await _send(
        session=session,
        temporal=temporal,
        ref=ref,
        name=eng.RESPOND_TO_PROPOSAL,
        arg=arg,
        what="proposal answer",
    )
    return "proposal_accepted" if decision == "accept" else "proposal_rejected"


async def send_message(
    *, session: AsyncSession, temporal: Client, ref: str, text_raw: str | None
) -> str:
    """The client writes on their case (a message on a resolved case reopens it)."""
    text = (text_raw or "").strip()
    if not text:
        raise PortalProblem(422, "Please write your message.")
    if len(text) > MESSAGE_MAX_CHARS:
        raise PortalProblem(422, f"Please keep your message under {MESSAGE_MAX_CHARS} characters.")
    message = await _send(
        session=session,
        temporal=temporal,
        ref=ref,
        name=eng.CLIENT_MESSAGE,
        arg=_command(ClientMessage, text=text),
        what="message",
    )
    return "message_reopened" if "open again" in message else "message_sent"


def notice_text(code: str | None) -> str | None:
    return NOTICES.get(code or "")
