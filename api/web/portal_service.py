"""The client portal's logic: who a link belongs to, where the case stands, and the client's
own actions (uploads, preferences, inbox, NPS).

The portal token (``core.security``) is the only credential a client has. It names one case,
so every query here is scoped to ``PortalCase.ref`` and nothing else; the token never works as
an API key or a console session. Errors come back as ``PortalProblem`` with a message fit for
a client, never the internal detail (which is logged instead).

Estimated completion is computed here, not copied from the latest notification: now + what
is left of the current stage's SLA (from the live workflow when it runs, else the full
budget) + the SLAs of the stages still to come (from the playbook's plan for this client).
A paused or closed case has none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from fastapi import HTTPException, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.services import documents as documents_svc
from api.services import notifications as notifications_svc
from api.services.cases import live_state, running_case
from core.portal_links import make_portal_link  # noqa: F401 - re-exported
from core.security import InvalidPortalToken, read_portal_token
from core.settings import Settings
from playbooks.loader import load_playbook
from schemas.case import CaseState
from schemas.client import ClientProfile, ContactPreferences
from schemas.documents import DocumentKind, DocumentRequirement
from schemas.enums import CaseStatus, Channel, Stage
from schemas.plan import CasePlan, Playbook
from store.models import CallbackTaskRow, Case, DocumentRow, NpsResponse
from workflows.routing import build_plan

log = logging.getLogger(__name__)

LIVE_STATE_TIMEOUT_SECONDS = 4.0
NPS_FOLLOW_UP_STAGE = "nps_follow_up"
NPS_FOLLOW_UP_BUSINESS_DAYS = 2
NPS_DETRACTOR_MAX = 6
NPS_COMMENT_MAX_CHARS = 2000

STAGE_NAMES: dict[Stage, str] = {
    Stage.ACKNOWLEDGEMENT: "We received your application",
    Stage.DOCUMENT_COLLECTION: "Your documents",
    Stage.COMPLIANCE_REVIEW: "Identity and compliance checks",
    Stage.SECURITY_REVIEW: "Security review",
    Stage.ACCOUNT_SETUP: "Setting up your account",
    Stage.FINAL_REVIEW: "Final check",
    Stage.WELCOME: "Welcome",
}
"""Plain-language step names: clients never see internal stage codes."""

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
    "rejected": "Not accepted",
}

NOTICES: dict[str, str] = {
    "uploaded": "Thank you - we received your document.",
    "upload_duplicate": "We already had this file; nothing else is needed for it.",
    "preferences_saved": "Your contact preferences are saved.",
    "marked_read": "Marked as read.",
    "nps_thanks": "Thank you for your feedback.",
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


# ---------------------------------------------------------------------------- the plan
@lru_cache(maxsize=4)
def _playbook(path: Path, mtime: float) -> Playbook:
    return load_playbook(path)


def case_plan(settings: Settings, case: Case) -> CasePlan | None:
    """The plan the playbook gives this client (checklist, stages, SLAs); None if unreadable.

    The case pinned its plan at start; this rebuilds it from the current playbook, which is
    the same unless the playbook changed since. Stage order for running cases comes from the
    workflow itself, so only the checklist and SLA figures can differ.
    """
    try:
        path = settings.playbook_path
        playbook = _playbook(path, path.stat().st_mtime)
        return build_plan(playbook, ClientProfile.model_validate(case.profile))
    except (OSError, ValueError) as exc:
        log.warning("portal cannot build plan case=%s error=%s", case.ref, type(exc).__name__)
        return None


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
    status: str  # missing | received | accepted | rejected
    status_words: str
    reason: str | None
    filename: str | None
    hint: str | None


@dataclass
class PortalPage:
    """Everything the portal page shows, for one case."""

    case_ref: str
    client_name: str
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
    inbox: notifications_svc.Inbox
    nps_state: str  # not_yet | open | recorded
    completed: bool
    closed: bool
    channel_names: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)


async def _live(session: AsyncSession, temporal: Client, case: Case) -> CaseState | None:
    """The running workflow's own view, or None (closed, not started, or not answering)."""
    if CaseStatus(case.status).is_closed or case.status == CaseStatus.DRAFT.value:
        return None
    try:
        handle = await running_case(session=session, temporal=temporal, ref=case.ref)
        async with asyncio.timeout(LIVE_STATE_TIMEOUT_SECONDS):
            return await live_state(handle)
    except (HTTPException, RPCError, TimeoutError) as exc:
        log.info("portal falls back to read model case=%s reason=%s", case.ref, type(exc).__name__)
        return None


def _status_words(status_key: str, stage: Stage, awaiting: str | None) -> str:
    """Where the case stands, as a client would say it."""
    if status_key == CaseStatus.PAUSED.value:
        return "Paused by our team - we will be in touch"
    if status_key == CaseStatus.COMPLETED.value:
        return "Complete - welcome aboard"
    if status_key == CaseStatus.REJECTED.value:
        return "Closed - we could not complete your application"
    if status_key == CaseStatus.CANCELLED.value:
        return "Closed"
    if status_key == CaseStatus.DRAFT.value:
        return "We are opening your case"
    if stage == Stage.DOCUMENT_COLLECTION and awaiting in (None, "client documents"):
        return "Waiting for your documents"
    if status_key == CaseStatus.WAITING_ON_CLIENT.value:
        return "Waiting for you"
    if stage in (Stage.COMPLIANCE_REVIEW, Stage.SECURITY_REVIEW, Stage.FINAL_REVIEW):
        return "Under review"
    if stage == Stage.DOCUMENT_COLLECTION:
        return "Checking your documents"
    if stage == Stage.ACCOUNT_SETUP:
        return "Setting up your account"
    if stage == Stage.WELCOME:
        return "Almost done"
    return "In progress"


def _hint(req: DocumentRequirement) -> str | None:
    """What the client must fill in so verification can accept the document."""
    parts = []
    if req.needs_expiry:
        parts.append("Please enter its expiry date when you upload it.")
    if req.max_age_days is not None:
        parts.append(
            f"It must be issued within the last {req.max_age_days} days: "
            "please enter its issue date."
        )
    return " ".join(parts) or None


async def checklist_for(
    session: AsyncSession, ref: str, plan: CasePlan | None
) -> list[ChecklistItem]:
    """Each checklist line with the newest upload of its kind and what verification said."""
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
    for req in plan.document_checklist if plan else []:
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
                reason=latest.status_detail if latest is not None and state == "rejected" else None,
                filename=latest.filename if latest is not None else None,
                hint=_hint(req),
            )
        )
    return items


def _sla_by_stage(plan: CasePlan | None) -> dict[Stage, timedelta]:
    return {s.stage: s.sla for s in plan.stages if s.sla is not None} if plan else {}


async def build_page(
    *, session: AsyncSession, temporal: Client, settings: Settings, ref: str
) -> PortalPage:
    """The portal page of one case: the live workflow while it runs, the read model after."""
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:  # deleted since the token was checked
        raise PortalLinkInvalid
    plan = case_plan(settings, case)
    live = await _live(session, temporal, case)
    status_key = live.status.value if live else case.status
    stage = live.stage if live else Stage(case.stage)
    planned = list(live.stages_planned) if live and live.stages_planned else []
    if not planned and plan is not None:
        planned = [s.stage for s in plan.stages]
    if stage not in planned:
        planned = [*planned, stage] if planned else [stage]
    closed = CaseStatus(status_key).is_closed
    completed = status_key == CaseStatus.COMPLETED.value
    index = planned.index(stage)
    done_steps = len(planned) if completed else index

    steps = []
    for i, s in enumerate(planned):
        state = "done" if i < done_steps else ("current" if i == index else "upcoming")
        steps.append(StepView(stage=s.value, name=STAGE_NAMES.get(s, s.value), state=state))
    remaining = [] if closed else [STAGE_NAMES.get(s, s.value) for s in planned[index + 1 :]]

    eta: datetime | None = None
    paused = status_key == CaseStatus.PAUSED.value or (live is not None and live.paused_by)
    if not closed and not paused:
        slas = _sla_by_stage(plan)
        current = slas.get(stage, timedelta(0))
        if live is not None and live.sla is not None and live.sla.remaining_seconds is not None:
            current = timedelta(seconds=max(live.sla.remaining_seconds, 0))
        later = sum((slas.get(s, timedelta(0)) for s in planned[index + 1 :]), timedelta(0))
        eta = datetime.now(UTC) + current + later

    checklist = await checklist_for(session, ref, plan)
    needed = [c for c in checklist if c.status in ("missing", "rejected")]
    kinds = [(c.kind, c.title) for c in checklist]
    kinds.append((DocumentKind.OTHER.value, "Other document"))

    profile = case.profile or {}
    try:
        prefs = ContactPreferences.model_validate(profile.get("contact_preferences") or {})
    except ValidationError:
        prefs = ContactPreferences()

    nps_state = "not_yet"
    if completed:
        answered = await session.scalar(select(NpsResponse.id).where(NpsResponse.case_ref == ref))
        nps_state = "recorded" if answered is not None else "open"

    return PortalPage(
        case_ref=ref,
        client_name=case.client_name,
        status_key=status_key,
        status_words=_status_words(status_key, stage, live.awaiting if live else None),
        step=len(planned) if completed else index + 1,
        total=len(planned),
        done_steps=done_steps,
        steps=steps,
        remaining=remaining,
        estimated_completion=eta,
        checklist=checklist,
        needed=needed,
        accepts_uploads=not closed,
        upload_kinds=kinds,
        max_upload_mb=round(settings.max_upload_bytes / (1024 * 1024), 1),
        preferences=prefs,
        callback_options=[(s.value, STAGE_NAMES.get(s, s.value)) for s in planned],
        preferences_open=not closed and status_key != CaseStatus.DRAFT.value,
        inbox=await notifications_svc.inbox(session=session, ref=ref),
        nps_state=nps_state,
        completed=completed,
        closed=closed,
        channel_names={c.value: n for c, n in CHANNEL_NAMES.items()},
        languages=dict(LANGUAGES),
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
    plan = case_plan(settings, case)
    allowed = {s.stage.value for s in plan.stages} if plan else {s.value for s in Stage}
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


async def mark_read(*, session: AsyncSession, ref: str, notification_id: int) -> str:
    try:
        await notifications_svc.mark_read(session=session, ref=ref, notification_id=notification_id)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            raise PortalProblem(404, "That message was not found.") from None
        raise
    return "marked_read"


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
    *, session: AsyncSession, ref: str, score_raw: str | None, comment_raw: str | None
) -> str:
    """Record the one NPS answer of a completed case; a detractor opens an RM follow-up.

    Both inserts are idempotent (unique case_ref; unique case+stage), so a double submit or
    a retry records one answer and one follow-up.
    """
    case = await session.get(Case, ref, populate_existing=True)
    assert case is not None
    if case.status != CaseStatus.COMPLETED.value:
        raise PortalProblem(
            409, "The survey opens once your onboarding is complete. Thank you for your patience."
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
    return "nps_thanks"


def notice_text(code: str | None) -> str | None:
    return NOTICES.get(code or "")
