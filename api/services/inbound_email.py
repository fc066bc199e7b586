"""Inbound email (SendGrid Inbound Parse, default "not raw" mode): read the post, find the case,
then attach the message to it or hold it in the quarantine for a person.

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
import base64
import binascii
import codecs
import contextlib
import hashlib
import hmac
import html as html_lib
import io
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

from fastapi import HTTPException, status
from fastapi import UploadFile as FastAPIUploadFile
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from temporalio.client import Client

from api.services import engine as eng
from api.services.documents import sanitize_filename, upload_document
from core.settings import Settings
from integrations.blobstore import BlobNotFoundError, BlobStore, validate_key
from integrations.filetypes import ALLOWED_DESCRIPTION, sniff
from schemas.case import status_is_closed
from schemas.documents import DocumentKind
from schemas.engine_commands import ClientMessage, CommandResult
from schemas.enums import CaseStatus
from store import inbound as store
from store.models import Case, InboundMessage

log = logging.getLogger(__name__)

CHANNEL = "email"
CLIENT_ROLE = "client"  # the engine's client role (api.web.case_engine.CLIENT_ROLE)
MESSAGE_MAX_CHARS = 2000  # ClientMessage.text (schemas.text.Text)
BODY_MAX_CHARS = 20_000  # what the row keeps of the reply
SCAN_MAX_CHARS = 200_000  # what quote stripping reads of a body (bounds the regex work)
SUBJECT_MAX_CHARS = 998  # RFC 5322 line limit
ADDRESS_MAX_CHARS = 320
PROVIDER_ID_MAX_CHARS = 300  # inbound_messages.provider_id
ACTOR_MAX_CHARS = 120
MAX_FIELD_BYTES = 32 * 1024 * 1024  # one text field of the form (SendGrid caps a mail at 30 MB)
READ_CHUNK_BYTES = 64 * 1024
MOVING_RETRIES = 3  # a case moving between stages refuses a message for a moment
MOVING_RETRY_SECONDS = 0.5

HELD = "held"
DOCUMENT = "document"
REFUSED = "refused"

_CONTROL_BLOCK = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SPACES = re.compile(r"[ \t]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
# A case reference in running text: letters, a hyphen, then letters/digits/_/- (ACME-0001,
# C-7K2M9QPRTX, PO-2026-0042), not glued to a longer word.
_REF_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z]{1,5}-[A-Za-z0-9][A-Za-z0-9_-]{0,58}")
_REF_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{2,63}$")  # schemas.case.CASE_REF_PATTERN
_ATTACHMENT_FIELD = re.compile(r"^attachment([1-9][0-9]{0,3})$")
_WROTE = re.compile(r"^\s*On\b.{0,400}\bwrote:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(original message|forwarded message)\s*-{2,}\s*$", re.IGNORECASE
)


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


# ------------------------------------------------------------------------------ credentials
def _same(given: bytes, expected: bytes) -> bool:
    """Constant time whatever the lengths (both sides hashed first)."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


def token_ok(settings: Settings, token: str) -> bool:
    expected = settings.inbound_email_token.get_secret_value()
    return _same(token.encode("utf-8", "surrogatepass"), expected.encode())


def basic_auth_ok(settings: Settings, header: str | None) -> bool:
    """``Authorization: Basic base64(user:password)`` with the configured pair."""
    if not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    user_ok = _same(user, settings.inbound_email_user.encode())
    password_ok = _same(password, settings.inbound_email_password.get_secret_value().encode())
    return bool(sep) and user_ok and password_ok


# ------------------------------------------------------------------------------ text
def clean_line(value: str, limit: int) -> str:
    """One line: control characters and folding become spaces; NUL and lone surrogates, which
    Postgres refuses, cannot get through."""
    return _SPACES.sub(" ", _CONTROL_LINE.sub(" ", value)).strip()[:limit]


def clean_block(value: str, limit: int) -> str:
    """Text that may span lines: control characters other than tab and newline removed."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_BLOCK.sub("", text)[:limit]


def html_to_text(html: str) -> str:
    """A plain rendering of an HTML-only email, without quoted (``blockquote``) history."""
    html = html[:SCAN_MAX_CHARS]
    html = re.sub(r"(?is)<(script|style|head)\b[^>]*>.*?</\1\s*>", " ", html)
    html = re.sub(r"(?is)<blockquote\b[^>]*>.*?</blockquote\s*>", "\n", html)
    html = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])\s*>", "\n", html)
    html = re.sub(r"<[^>]*>", "", html)
    return html_lib.unescape(html)


def reply_text(text: str) -> str:
    """The reply without its quoted history: lines starting with ``>`` go, and everything from
    an ``On ... wrote:`` line (also wrapped over two lines) or an "Original Message" rule."""
    lines = clean_block(text[:SCAN_MAX_CHARS], SCAN_MAX_CHARS).split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _ORIGINAL.match(line) or _WROTE.match(line):
            break
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.lstrip().startswith("On ") and _WROTE.match(f"{line} {nxt}"):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip()[:BODY_MAX_CHARS]


def message_text(body: str, attachments: list[dict[str, Any]]) -> str:
    """What the case hears: the reply, capped to a client message's limit; never empty."""
    text = body.strip()
    if not text:
        names = ", ".join(str(a.get("filename")) for a in attachments[:10])
        text = f"(an email with no text; attached: {names})" if names else "(an empty email)"
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1].rstrip() + "…"
    return text


def client_actor(sender: str) -> str:
    """The actor the case records: the client, and the address they wrote from."""
    return f"client:{sender}"[:ACTOR_MAX_CHARS] if sender else "client"


def document_kind(filename: str) -> DocumentKind:
    """The kind a file name spells out (``proof_of_address.pdf``), else ``other``: the upload
    service files it, and a case manager classifies it."""
    stem = re.sub(r"[^a-z0-9]+", "_", filename.rsplit(".", 1)[0].lower())
    for kind in DocumentKind:
        if kind is not DocumentKind.OTHER and kind.value in stem:
            return kind
    return DocumentKind.OTHER


# ------------------------------------------------------------------------------ case refs
def plus_refs(addresses: list[str]) -> list[str]:
    """References from plus-addresses (``cases+ACME-0001@example.com``)."""
    refs: list[str] = []
    for address in addresses:
        local = address.rpartition("@")[0]
        tag = local.partition("+")[2]
        if tag and _REF_OK.match(tag) and tag not in refs:
            refs.append(tag)
    return refs


def subject_refs(subject: str) -> list[str]:
    """Reference-shaped words of the subject, in order (at most 10)."""
    refs: list[str] = []
    for found in _REF_IN_TEXT.findall(subject):
        ref = found.rstrip("-_")
        if _REF_OK.match(ref) and ref not in refs:
            refs.append(ref)
    return refs[:10]


# ------------------------------------------------------------------------------ reading
@dataclass
class ParsedEmail:
    """The post as we use it. ``problems`` name malformed fields (the message is then kept,
    but quarantined)."""

    provider_id: str
    sender: str
    sender_field: str
    recipients: list[str]
    subject: str
    body: str
    attachments: list[dict[str, Any]]
    held: dict[int, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def recipient(self) -> str | None:
        tagged = next((a for a in self.recipients if "+" in a.rpartition("@")[0]), None)
        return tagged or (self.recipients[0] if self.recipients else None)


def _recode(value: str, charset: object) -> str:
    """Honour SendGrid's ``charsets`` for a field Starlette read as UTF-8 (falling back to
    Latin-1 for bytes that are not UTF-8): such bytes are decoded again in the named charset."""
    if not isinstance(charset, str) or not value or value.isascii():
        return value
    try:
        name = codecs.lookup(charset.strip()).name
    except LookupError:
        return value
    if name in ("utf-8", "latin-1", "iso8859-1"):
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value  # it was read as UTF-8: characters beyond Latin-1
    try:
        raw.decode("utf-8")
        return value  # valid UTF-8, so Starlette read it as such
    except UnicodeDecodeError:
        return raw.decode(name, errors="replace")


def _json_object(raw: str, name: str, problems: list[str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        problems.append(f"{name} is not valid JSON")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{name} is not a JSON object")
        return {}
    return value


def _addresses(*headers: str) -> list[str]:
    found: list[str] = []
    for _, address in getaddresses([h for h in headers if h]):
        address = clean_line(address, ADDRESS_MAX_CHARS).lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


def _provider_id(headers: str, fallback: list[str]) -> str:
    """The Message-ID header; without one (or a huge one), a hash of what identifies the mail,
    so a repeat post still finds it."""
    message_id = ""
    with contextlib.suppress(Exception):  # a broken header block: no id
        message_id = clean_line(str(HeaderParser().parsestr(headers).get("Message-ID") or ""), 2000)
    if message_id and len(message_id) <= PROVIDER_ID_MAX_CHARS:
        return message_id
    digest = hashlib.sha256("\x1f".join([message_id, *fallback]).encode("utf-8", "replace"))
    return f"sha256:{digest.hexdigest()}"


async def _read_capped(upload: UploadFile, limit: int) -> bytes | None:
    """The file's bytes, or None once it passes ``limit``."""
    parts: list[bytes] = []
    total = 0
    while chunk := await upload.read(READ_CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def read_email(form: FormData, settings: Settings) -> ParsedEmail:
    """The SendGrid fields we use, cleaned and bounded, and each attachment judged: held
    (a PDF, PNG or JPEG within the size limit, up to ``inbound_max_attachments``) or refused
    with the reason."""
    problems: list[str] = []

    def raw(name: str) -> str:
        values = form.getlist(name)
        if not values:
            return ""
        if not isinstance(values[0], str):
            problems.append(f"{name} was sent as a file")
            return ""
        return values[0]

    charsets = _json_object(raw("charsets"), "charsets", [])  # advisory only

    def text(name: str) -> str:
        return _recode(raw(name), charsets.get(name))

    sender_field = clean_line(text("from"), ADDRESS_MAX_CHARS)
    sender = clean_line(parseaddr(sender_field)[1], ADDRESS_MAX_CHARS).lower()
    if "@" not in sender:
        sender = ""
    envelope = _json_object(raw("envelope"), "envelope", problems)
    envelope_to = envelope.get("to")
    envelope_to = [str(a) for a in envelope_to] if isinstance(envelope_to, list) else []
    recipients = _addresses(text("to"), text("cc"), ", ".join(envelope_to))
    subject = clean_line(text("subject"), SUBJECT_MAX_CHARS)
    body_source = text("text")
    if not body_source.strip() and (html := text("html")):
        body_source = html_to_text(html)
    body = reply_text(body_source)
    headers = raw("headers")
    provider_id = _provider_id(headers, [sender_field, subject, ",".join(recipients), body])
    info = _json_object(raw("attachment-info"), "attachment-info", problems)
    count = raw("attachments").strip()
    if count and not count.isdigit():
        problems.append("attachments is not a number")

    files: list[tuple[int, UploadFile]] = []
    for name, value in form.multi_items():
        matched = _ATTACHMENT_FIELD.match(name)
        if matched is None:
            continue
        if isinstance(value, str):
            problems.append(f"{name} is not a file")
            continue
        files.append((int(matched.group(1)), value))
    files.sort(key=lambda item: item[0])

    attachments: list[dict[str, Any]] = []
    held: dict[int, bytes] = {}
    for position, (index, upload) in enumerate(files):
        meta = info.get(f"attachment{index}")
        meta = meta if isinstance(meta, dict) else {}
        given = meta.get("filename") or meta.get("name") or upload.filename or ""
        filename = sanitize_filename(clean_line(str(given), 500))
        declared = clean_line(str(meta.get("type") or upload.content_type or ""), 100) or None
        entry: dict[str, Any] = {
            "index": index,
            "filename": filename,
            "declared_type": declared,
            "content_type": None,
            "size": None,
            "kind": None,
        }
        if position >= settings.inbound_max_attachments:
            limit = settings.inbound_max_attachments
            entry.update(outcome=REFUSED, reason=f"over the limit of {limit} attachments per email")
        elif (data := await _read_capped(upload, settings.max_upload_bytes)) is None:
            entry.update(
                outcome=REFUSED,
                reason=f"larger than the {settings.max_upload_bytes} byte upload limit",
            )
        else:
            entry["size"] = len(data)
            sniffed = sniff(data)
            if not sniffed.allowed:
                entry.update(
                    outcome=REFUSED,
                    reason=f"not a {ALLOWED_DESCRIPTION} (judged by content, not by name)",
                )
            else:
                entry.update(
                    outcome=HELD,
                    content_type=sniffed.content_type,
                    sha256=hashlib.sha256(data).hexdigest(),
                    kind=document_kind(filename).value,
                )
                held[index] = data
        attachments.append(entry)

    return ParsedEmail(
        provider_id=provider_id,
        sender=sender,
        sender_field=sender_field,
        recipients=recipients,
        subject=subject,
        body=body,
        attachments=attachments,
        held=held,
        problems=problems,
    )


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
