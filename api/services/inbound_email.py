"""Inbound email (SendGrid Inbound Parse): find the case a parsed message names, then attach
the message to it or hold it in the quarantine for a person. Reading the post (credentials,
text cleaning, quote stripping, case references, attachments judged) is
``api.services.inbound_parsing``.

Why it is built this way:

- **Nothing is dropped silently.** Every post that passed authentication becomes one
  ``inbound_messages`` row, even one we cannot read; SendGrid gets a 200 for it (anything else
  makes it retry for three days). A message is attached only when it names a case (a
  ``cases+<REF>@`` recipient, else a reference in the subject) and comes from the case's client
  or one of its active contacts; anything else waits in the quarantine with a reason.
- **Idempotent on Message-ID.** A repeat post of a stored message changes nothing. A row left
  ``attaching`` by a process that died halfway counts as quarantined after
  ``store.inbound.STALE_ATTACHING``, and a repeat post may take it over.
- **The same paths as the API.** The reply goes to an engine case as its ``client_message``
  update, as the client (role ``client``), so a resolved case reopens when its case type says
  so; a case of the frozen onboarding workflow gets a ``client_message`` audit event. Each
  attachment goes through the upload service (content sniffing, size limit, blob store,
  ``documents_uploaded``), so an emailed PDF is the same document an upload would be.
- **Attachments are kept until decided.** Acceptable ones are held in the blob store under
  ``inbound/<hash of the message id>/<n>``, so a person can attach a quarantined message,
  files and all; the held copy is deleted once the message is attached or dismissed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from fastapi import UploadFile as FastAPIUploadFile
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from temporalio.client import Client

from api.services import engine as eng
from api.services.documents import upload_document
from api.services.inbound_parsing import (
    DOCUMENT,
    HELD,
    MESSAGE_MAX_CHARS,
    REFUSED,
    ParsedEmail,
    clean_block,
    clean_line,
    client_actor,
    message_text,
    plus_refs,
    read_email,
    subject_refs,
)

# The ``name as name`` imports are re-exports: routes and tests reach them through this module.
from api.services.inbound_parsing import MAX_FIELD_BYTES as MAX_FIELD_BYTES
from api.services.inbound_parsing import _recode as _recode
from api.services.inbound_parsing import basic_auth_ok as basic_auth_ok
from api.services.inbound_parsing import document_kind as document_kind
from api.services.inbound_parsing import html_to_text as html_to_text
from api.services.inbound_parsing import reply_text as reply_text
from api.services.inbound_parsing import token_ok as token_ok
from core.settings import Settings
from integrations.blobstore import BlobNotFoundError, BlobStore, validate_key
from schemas.case import status_is_closed
from schemas.documents import DocumentKind
from schemas.engine_commands import ClientMessage, CommandResult
from schemas.enums import CaseStatus
from store import inbound as store
from store.models import Case, InboundMessage

log = logging.getLogger(__name__)

CHANNEL = "email"
CLIENT_ROLE = "client"  # the engine's client role (api.web.case_engine.CLIENT_ROLE)
MOVING_RETRIES = 3  # a case moving between stages refuses a message for a moment
MOVING_RETRY_SECONDS = 0.5


# ------------------------------------------------------------------------------ views
class InboundAttachmentView(BaseModel):
    """One attachment of an inbound message and what became of it."""

    index: int = Field(description="n of the attachment<n> form field")
    filename: str
    content_type: str | None = Field(description="As sniffed from the bytes, when accepted")
    size: int | None
    kind: str | None = Field(default=None, description="The document kind it was filed as")
    outcome: str = Field(
        description="held (kept until the message is attached) | document | refused"
    )
    document_id: str | None = None
    reason: str | None = Field(default=None, description="Why it was refused")


class InboundMessageView(BaseModel):
    """An inbound message as stored."""

    id: int
    channel: str
    sender: str = Field(description="The From address ('' when none could be read)")
    recipient: str | None
    subject: str | None
    body_text: str = Field(description="The reply, quoted history removed")
    case_ref: str | None = Field(description="Where it was attached, or the case it named")
    status: str = Field(description="attached | quarantined | dismissed | attaching")
    reason: str | None = Field(description="Why it was quarantined (and dismissed)")
    attachments: list[InboundAttachmentView]
    received_at: datetime
    decided_at: datetime | None
    decided_by: str | None = Field(description="Who attached or dismissed it by hand")


class QuarantinePage(BaseModel):
    items: list[InboundMessageView] = Field(description="Newest first")
    total: int
    limit: int
    offset: int


class InboundReceipt(BaseModel):
    """The answer to SendGrid: what we did with the message (any 200 stops its retries)."""

    id: int | None
    status: str = Field(description="attached | quarantined (or the stored status, duplicate)")
    case_ref: str | None
    reason: str | None = None
    duplicate: bool = Field(default=False, description="Already stored under its Message-ID")


# ------------------------------------------------------------------------------ deciding
async def decide(session: AsyncSession, email: ParsedEmail) -> tuple[Case | None, str | None]:
    """The case the message names (a plus-address first, then the subject), and the reason to
    quarantine it (None: attach it)."""
    plus, in_subject = plus_refs(email.recipients), subject_refs(email.subject)
    found = await store.cases_by_refs(session, [*plus, *in_subject])
    case: Case | None = None
    for refs, where in ((plus, "recipient addresses name"), (in_subject, "subject names")):
        matched = {found[r.upper()].ref: found[r.upper()] for r in refs if r.upper() in found}
        if len(matched) > 1:
            return None, f"the {where} more than one case: {', '.join(sorted(matched))}"
        if matched:
            case = next(iter(matched.values()))
            break
    if case is None:
        looked = [*plus, *(r for r in in_subject if r not in plus)]
        if looked:
            return None, f"no case matches the references found: {', '.join(looked[:5])}"
        return None, "no case reference found"
    if email.problems:
        return case, "malformed fields: " + "; ".join(email.problems)
    if not email.sender:
        return case, "no sender address in the From field"
    if not await store.is_contact(session, case=case, address=email.sender):
        return case, f"sender is not a contact of case {case.ref}"
    return case, None


# ------------------------------------------------------------------------------ attaching
def _held_key(provider_id: str, index: int) -> str:
    digest = hashlib.sha256(f"{CHANNEL}\x1f{provider_id}".encode()).hexdigest()
    return validate_key(f"inbound/{digest}/{index}")


async def _hold(blobs: BlobStore, provider_id: str, email: ParsedEmail) -> None:
    """Keep the acceptable attachments' bytes until the message is decided."""
    for entry in email.attachments:
        if entry.get("outcome") != HELD:
            continue
        key = _held_key(provider_id, int(entry["index"]))
        try:
            await asyncio.to_thread(blobs.put, key, email.held[int(entry["index"])])
        except Exception as e:  # disk full, store down: the message itself still counts
            log.error("inbound attachment not stored key=%s error=%s", key, type(e).__name__)
            entry.update(outcome=REFUSED, reason="could not be stored; ask the sender to resend")


async def _drop_held(blobs: BlobStore, provider_id: str, attachments: list[dict[str, Any]]) -> None:
    for entry in attachments:
        with contextlib.suppress(Exception):  # best effort: a leftover copy harms nobody
            await asyncio.to_thread(blobs.delete, _held_key(provider_id, int(entry["index"])))


async def _send_client_message(
    *, session: AsyncSession, temporal: Client, ref: str, actor: str, text: str
) -> CommandResult:
    """The engine's ``client_message`` update, as the client (the API's own callers are staff
    or the client app; this one is the client in person). 404/409/503 as HTTPException."""
    row = await eng.load_case(session=session, ref=ref, caller=None)
    eng.require_commandable(row)
    if not row.is_engine:
        raise eng.not_for_frozen(row, "'client_message' command")
    command = ClientMessage(actor=actor, role=CLIENT_ROLE, text=text, channel="email")
    handle = temporal.get_workflow_handle(row.workflow_id)
    for attempt in range(MOVING_RETRIES + 1):
        try:
            async with eng.temporal_errors():
                return await handle.execute_update(
                    eng.CLIENT_MESSAGE,
                    command,
                    result_type=CommandResult,
                    rpc_timeout=eng.COMMAND_TIMEOUT,
                )
        except HTTPException as e:
            # a case between stages (say, reopened by the client's previous email a moment
            # ago) asks to be tried again shortly; anything else is the answer
            moving = e.status_code == status.HTTP_409_CONFLICT and "try again" in str(e.detail)
            if not moving or attempt == MOVING_RETRIES:
                raise
            await asyncio.sleep(MOVING_RETRY_SECONDS)
    raise AssertionError("unreachable")


async def deliver(
    *,
    session: AsyncSession,
    temporal: Client,
    blobs: BlobStore,
    settings: Settings,
    message_id: int,
    provider_id: str,
    case_ref: str,
    sender: str,
    body: str,
    attachments: list[dict[str, Any]],
    held: dict[int, bytes],
) -> list[dict[str, Any]]:
    """Put the message on the case, then file each held attachment as a document; the
    attachments' outcomes. The message going in is what counts: its refusal (a closed case,
    Temporal away) raises HTTPException and files nothing; a refused attachment is recorded."""
    actor = client_actor(sender)
    text = message_text(body, attachments)
    case = await session.get(Case, case_ref, populate_existing=True)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {case_ref}")
    # plain values: a rollback (load_case does one) expires the ORM object
    ref, engine, case_status = case.ref, case.engine, case.status
    if engine == eng.ENGINE:
        await _send_client_message(
            session=session, temporal=temporal, ref=ref, actor=actor, text=text
        )
    else:  # the frozen onboarding workflow has no client_message: the timeline gets the event
        if status_is_closed(case_status) or case_status == CaseStatus.DRAFT.value:
            raise eng.conflict(f"case {ref} is {case_status}; it takes no messages")
        await store.record_case_event(
            session,
            case_ref=ref,
            event_key=f"inbound-email-{message_id}",
            kind="client_message",
            actor=actor,
            detail={"text": text, "channel": CHANNEL, "inbound_id": message_id},
            at=datetime.now(UTC),
        )
        await session.commit()

    outcomes: list[dict[str, Any]] = []
    for original in attachments:
        entry = dict(original)
        outcomes.append(entry)
        if entry.get("outcome") != HELD:
            continue
        index = int(entry["index"])
        data = held.get(index)
        if data is None:
            try:
                data = await asyncio.to_thread(blobs.get, _held_key(provider_id, index))
            except (BlobNotFoundError, OSError):
                entry.update(outcome=REFUSED, reason="the held copy is missing")
                continue
        kind = DocumentKind(entry.get("kind") or DocumentKind.OTHER.value)
        upload = FastAPIUploadFile(
            file=io.BytesIO(data), filename=str(entry["filename"]), size=len(data)
        )
        try:
            document = await upload_document(
                session=session,
                temporal=temporal,
                blobs=blobs,
                settings=settings,
                ref=ref,
                upload=upload,
                kind=kind,
                issued_on=None,
                expires_on=None,
                uploaded_by=actor,
            )
        except HTTPException as e:
            await session.rollback()
            entry.update(outcome=REFUSED, reason=str(e.detail))
            continue
        entry.update(outcome=DOCUMENT, document_id=document.id, reason=None)
    return outcomes


# ------------------------------------------------------------------------------ use-cases
def _now() -> datetime:
    return datetime.now(UTC)


def _receipt(row: InboundMessage, *, duplicate: bool = False) -> InboundReceipt:
    return InboundReceipt(
        id=row.id, status=row.status, case_ref=row.case_ref, reason=row.reason, duplicate=duplicate
    )


async def store_unreadable(session: AsyncSession, *, reason: str) -> InboundReceipt:
    """A post whose form could not be read: kept (quarantined) so someone sees it happened."""
    now = _now()
    reason = clean_line(f"the post could not be read: {reason}", 500)
    row_id = await store.claim(
        session,
        {
            "channel": CHANNEL,
            "provider_id": f"unreadable:{uuid.uuid4().hex}",
            "sender": "",
            "status": store.QUARANTINED,
            "reason": reason,
            "attachments": [],
            "received_at": now,
        },
    )
    await session.commit()
    log.warning("inbound email unreadable id=%s", row_id)
    return InboundReceipt(id=row_id, status=store.QUARANTINED, case_ref=None, reason=reason)


async def receive_email(
    *,
    form: FormData,
    session: AsyncSession,
    temporal: Client,
    blobs: BlobStore,
    settings: Settings,
) -> InboundReceipt:
    """Store the message once (by Message-ID), then attach it to its case or quarantine it.
    Never raises for the message's content: a failure to attach quarantines it with the
    reason."""
    email = await read_email(form, settings)
    now = _now()
    existing = await store.by_provider_id(session, channel=CHANNEL, provider_id=email.provider_id)
    row_id: int | None = None
    if existing is not None:
        receipt = _receipt(existing, duplicate=True)
        if not await store.take_over_stale(session, message_id=existing.id, now=now):
            await session.rollback()
            log.info("inbound email repeat id=%s status=%s", receipt.id, receipt.status)
            return receipt
        row_id = receipt.id  # its first attempt died halfway: this post finishes the job
    case, reason = await decide(session, email)
    case_ref = case.ref if case is not None else None
    state = store.QUARANTINED if reason is not None else store.ATTACHING
    if row_id is None:
        row_id = await store.claim(
            session,
            {
                "channel": CHANNEL,
                "provider_id": email.provider_id,
                "case_ref": case_ref,
                "sender": email.sender or email.sender_field,
                "recipient": email.recipient,
                "subject": email.subject,
                "body_text": email.body,
                "status": state,
                "reason": reason,
                "attachments": email.attachments,
                "received_at": now,
                "decided_at": now if state == store.ATTACHING else None,
            },
        )
        if row_id is None:  # a concurrent post of the same message won
            await session.rollback()
            again = await store.by_provider_id(
                session, channel=CHANNEL, provider_id=email.provider_id
            )
            assert again is not None
            receipt = _receipt(again, duplicate=True)
            await session.rollback()
            return receipt
    await session.commit()
    await _hold(blobs, email.provider_id, email)

    attachments = email.attachments
    if state == store.ATTACHING:
        assert case_ref is not None
        try:
            attachments = await deliver(
                session=session,
                temporal=temporal,
                blobs=blobs,
                settings=settings,
                message_id=row_id,
                provider_id=email.provider_id,
                case_ref=case_ref,
                sender=email.sender,
                body=email.body,
                attachments=email.attachments,
                held=email.held,
            )
            state = store.ATTACHED
        except HTTPException as e:
            state, reason = store.QUARANTINED, f"could not attach to case {case_ref}: {e.detail}"
        except Exception as e:
            log.exception("inbound email id=%s: attaching to %s failed", row_id, case_ref)
            state = store.QUARANTINED
            reason = f"could not attach to case {case_ref}: {type(e).__name__} (logged)"
        await session.rollback()
    await store.finish(
        session,
        message_id=row_id,
        status=state,
        reason=reason,
        case_ref=case_ref,
        subject=email.subject,
        sender=email.sender or email.sender_field,
        recipient=email.recipient,
        body_text=email.body,
        attachments=attachments,
        decided_at=now if state == store.ATTACHED else None,
        decided_by=None,
    )
    await session.commit()
    if state == store.ATTACHED:
        await _drop_held(blobs, email.provider_id, attachments)
    log.info("inbound email id=%s status=%s case=%s", row_id, state, case_ref)
    return InboundReceipt(id=row_id, status=state, case_ref=case_ref, reason=reason)


def view(row: InboundMessage) -> InboundMessageView:
    return InboundMessageView(
        id=row.id,
        channel=row.channel,
        sender=row.sender,
        recipient=row.recipient,
        subject=row.subject,
        body_text=row.body_text or "",
        case_ref=row.case_ref,
        status=row.status,
        reason=row.reason,
        attachments=[
            InboundAttachmentView(
                index=int(a.get("index") or 0),
                filename=str(a.get("filename") or ""),
                content_type=a.get("content_type"),
                size=a.get("size"),
                kind=a.get("kind"),
                outcome=str(a.get("outcome") or REFUSED),
                document_id=a.get("document_id"),
                reason=a.get("reason"),
            )
            for a in (row.attachments or [])
            if isinstance(a, dict)
        ],
        received_at=row.received_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
    )


async def quarantine(session: AsyncSession, *, limit: int, offset: int) -> QuarantinePage:
    rows, total = await store.quarantine_page(session, now=_now(), limit=limit, offset=offset)
    return QuarantinePage(items=[view(r) for r in rows], total=total, limit=limit, offset=offset)


async def _message(session: AsyncSession, message_id: int) -> InboundMessage:
    row = await store.get(session, message_id)
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND, detail=f"no inbound message {message_id}"
        )
    return row


def _not_reviewable(row: InboundMessage) -> HTTPException:
    return eng.conflict(f"inbound message {row.id} is {row.status}, not quarantined")


async def attach(
    *,
    session: AsyncSession,
    temporal: Client,
    blobs: BlobStore,
    settings: Settings,
    message_id: int,
    case_ref: str,
    decided_by: str,
) -> InboundMessageView:
    """A person attaches a quarantined message to a case: the same delivery as an automatic
    attach (the sender check is theirs to make). 404 unknown message or case, 409 when it is
    not quarantined (or the case takes no message), 503 when Temporal is away; on any refusal
    the message stays quarantined."""
    row = await _message(session, message_id)
    found = await store.cases_by_refs(session, [case_ref])
    case = found.get(case_ref.upper())
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {case_ref}")
    # plain values: a rollback expires the ORM objects
    before = (row.decided_at, row.decided_by)
    snapshot = (row.provider_id, row.sender, row.body_text or "", list(row.attachments or []))
    quarantine_reason, ref = row.reason, case.ref
    now = _now()
    if not await store.take_over(session, message_id=message_id, now=now, decided_by=decided_by):
        await session.rollback()
        raise _not_reviewable(await _message(session, message_id))
    await session.commit()
    provider_id, sender, body, attachments = snapshot
    try:
        outcomes = await deliver(
            session=session,
            temporal=temporal,
            blobs=blobs,
            settings=settings,
            message_id=message_id,
            provider_id=provider_id,
            case_ref=ref,
            sender=sender if "@" in sender else "",
            body=body,
            attachments=attachments,
            held={},
        )
    except BaseException:
        await session.rollback()
        await store.release(
            session, message_id=message_id, decided_at=before[0], decided_by=before[1]
        )
        await session.commit()
        raise
    await session.rollback()
    await store.finish(
        session,
        message_id=message_id,
        status=store.ATTACHED,
        reason=quarantine_reason,
        case_ref=ref,
        attachments=outcomes,
        decided_at=now,
        decided_by=decided_by,
    )
    await session.commit()
    await _drop_held(blobs, provider_id, outcomes)
    log.info("inbound message id=%s attached by hand case=%s by=%s", message_id, ref, decided_by)
    return view(await _message(session, message_id))


async def dismiss(
    *, session: AsyncSession, blobs: BlobStore, message_id: int, reason: str, decided_by: str
) -> InboundMessageView:
    """A person dismisses a quarantined message (kept, with both reasons); its held
    attachments are deleted. 404 unknown, 409 not quarantined."""
    refusal = _not_reviewable(await _message(session, message_id))
    reason = clean_block(reason, MESSAGE_MAX_CHARS).strip() or "no reason given"
    done = await store.dismiss(
        session, message_id=message_id, reason=reason, now=_now(), decided_by=decided_by
    )
    if done is None:
        await session.rollback()
        raise refusal
    await session.commit()
    await _drop_held(blobs, done.provider_id, list(done.attachments or []))
    log.info("inbound message id=%s dismissed by=%s", message_id, decided_by)
    return view(done)
