"""Document use-cases behind the HTTP routes: upload, list and download a case's documents.

Bytes go to the blob store under a content-addressed key; Postgres keeps the metadata; the
workflow only ever hears document ids (a ``documents_uploaded`` signal to an engine case, a
``documents_received`` signal to a case of the frozen onboarding workflow).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.services.engine import DOCUMENTS_UPLOADED, ENGINE, FROZEN_DOCUMENTS_RECEIVED
from core.settings import Settings
from integrations.blobstore import BlobNotFoundError, BlobStore, LocalBlobStore, case_document_key
from integrations.filetypes import ALLOWED_CONTENT_TYPES, ALLOWED_DESCRIPTION, sniff
from schemas.case import status_is_closed
from schemas.commands import DocumentsReceived
from schemas.documents import DocumentKind
from schemas.engine_commands import DocumentsUploaded
from schemas.enums import CaseStatus
from store.models import Case, DocumentRow

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 120
FALLBACK_FILENAME = "document"
SIGNAL_TIMEOUT = timedelta(seconds=5)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EXTENSIONS = {"application/pdf": ("pdf",), "image/png": ("png",), "image/jpeg": ("jpg", "jpeg")}


# ------------------------------------------------------------------------------ views
class DocumentView(BaseModel):
    """A stored document's metadata (never its bytes)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    case_ref: str
    kind: DocumentKind
    filename: str = Field(description="Sanitised client file name; for display and download")
    content_type: str = Field(description="Sniffed from the bytes, not taken from the client")
    size: int
    sha256: str
    issued_on: date | None
    expires_on: date | None
    uploaded_by: str
    uploaded_at: datetime
    status: str = Field(description="received | accepted | needs_review | rejected")
    status_detail: str | None = None
    verdict: str | None = Field(
        default=None,
        description="What reading the file concluded: machine_verified | needs_review | "
        "rejected (empty until verification has read it)",
    )
    verdict_reasons: list[dict[str, str]] = Field(
        default_factory=list,
        description="The findings behind the verdict: code, verdict, staff (what was read and "
        "compared), client (what to fix, in plain words)",
    )

    @field_validator("verdict_reasons", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return value or []


class DocumentUploaded(DocumentView):
    """The upload's outcome: the document, whether it is new, and whether the case heard of it."""

    created: bool = Field(description="False when the same bytes were already on this case")
    workflow_notified: bool = Field(
        description="False if the case's workflow could not be signalled; the upload is kept"
    )


class DocumentList(BaseModel):
    case_ref: str
    items: list[DocumentView] = Field(description="Newest first")


@dataclass(frozen=True, slots=True)
class DocumentContent:
    data: bytes
    content_type: str
    filename: str


# ------------------------------------------------------------------------------ blob store
def get_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings point at; one instance per directory, reused."""
    return _local_store((settings.blob_dir or settings.data_dir / "blobs").resolve())


@lru_cache(maxsize=8)
def _local_store(root: Path) -> LocalBlobStore:
    return LocalBlobStore(root)


# ------------------------------------------------------------------------------ helpers
def new_document_id() -> str:
    """``doc_`` + 26 Crockford base32 chars (ULID layout): sorts by creation time, unguessable."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "doc_" + "".join(reversed(chars))


def sanitize_filename(name: str | None, *, content_type: str | None = None) -> str:
    """A display-safe base name: no path, no control/format chars, bounded, with a true extension.

    Format characters (e.g. U+202E right-to-left override) are dropped too, so a name cannot
    pretend to end in ``.pdf``. When ``content_type`` is given and the name's extension does not
    match it, the matching extension is appended, so a download opens as what it really is.
    """
    text = unicodedata.normalize("NFC", name or "").replace("\\", "/")
    base = text.rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C" and ch != '"')
    cleaned = cleaned.strip().lstrip(".").strip() or FALLBACK_FILENAME
    stem, dot, ext = cleaned.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, ext = cleaned, ""
    wanted = _EXTENSIONS.get(content_type or "")
    if wanted and ext.lower() not in wanted:
        stem, ext = cleaned, wanted[0]
    room = MAX_FILENAME_CHARS - (len(ext) + 1 if ext else 0)
    return f"{stem[:room].rstrip() or FALLBACK_FILENAME}.{ext}" if ext else stem[:room]


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, for other names, an RFC 5987 ``filename*``."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as FastAPI's own field errors."""
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def parse_day(field: str, value: str | None) -> date | None:
    """``YYYY-MM-DD`` only (no timestamps, no times); 422 otherwise."""
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(field, "must be a date as YYYY-MM-DD") from None


def check_dates(issued_on: date | None, expires_on: date | None) -> None:
    """422 when the document would expire before it was issued."""
    if issued_on is not None and expires_on is not None and expires_on < issued_on:
        raise _invalid("expires_on", "must not be before issued_on")


async def read_capped(upload: UploadFile, *, limit: int) -> bytes:
    """The upload's bytes, read in chunks; 413 as soon as it passes ``limit``."""
    parts: list[bytes] = []
    total = 0
    while chunk := await upload.read(READ_CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            raise HTTPException(
                status_code=status.HTTP_413_CONTENT_TOO_LARGE,
                detail=f"file is larger than the {limit} byte limit",
            )
        parts.append(chunk)
    return b"".join(parts)


async def open_case(*, session: AsyncSession, ref: str) -> Case:
    """The case to attach documents to: 404 if unknown, 409 if closed. The status is plain
    text: the frozen workflow's ``CaseStatus`` or the engine's (``resolved``, ``closed``)."""
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    if status_is_closed(case.status):
        raise HTTPException(
            status_code=status.HTTP_409_CONFLICT,
            detail=f"case {ref} is {case.status}; it takes no more documents",
        )
    return case


async def _known_case(*, session: AsyncSession, ref: str) -> None:
    """404 unless the case exists (closed cases can still be read)."""
    if await session.scalar(select(Case.ref).where(Case.ref == ref)) is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")


# ------------------------------------------------------------------------------ use-cases
async def upload_document(
    *,
    session: AsyncSession,
    temporal: Client,
    blobs: BlobStore,
    settings: Settings,
    ref: str,
    upload: UploadFile,
    kind: DocumentKind,
    issued_on: str | None,
    expires_on: str | None,
    uploaded_by: str,
) -> DocumentUploaded:
    """Validate, store (blob first, then row), then tell the workflow. Same bytes: same document.

    Every refusal (404/409/413/415/422) happens before anything is written. The blob goes first
    so a row never points at missing bytes; a crash in between leaves only an unreferenced,
    content-addressed blob that the retry reuses.
    """
    issued = parse_day("issued_on", issued_on)
    expires = parse_day("expires_on", expires_on)
    check_dates(issued, expires)
    case = await open_case(session=session, ref=ref)
    data = await read_capped(upload, limit=settings.max_upload_bytes)
    sniffed = sniff(data)
    if not sniffed.allowed:
        log.info("document refused case=%s detected=%s size=%d", ref, sniffed.detected, len(data))
        raise HTTPException(
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"unsupported file type; allowed: {ALLOWED_DESCRIPTION} "
            f"({', '.join(ALLOWED_CONTENT_TYPES)}), judged by content, not by file name",
        )
    assert sniffed.content_type is not None
    digest = hashlib.sha256(data).hexdigest()
    key = case_document_key(ref, digest)

    row = await _by_digest(session=session, ref=ref, sha256=digest)
    created = row is None
    if row is None:
        await asyncio.to_thread(blobs.put, key, data)
        doc_id = new_document_id()
        inserted = await session.scalar(
            insert(DocumentRow)
            .values(
                id=doc_id,
                case_ref=ref,
                kind=kind.value,
                filename=sanitize_filename(upload.filename, content_type=sniffed.content_type),
                content_type=sniffed.content_type,
                size=len(data),
                sha256=digest,
                storage_key=key,
                issued_on=issued,
                expires_on=expires,
                uploaded_by=uploaded_by,
                uploaded_at=datetime.now(UTC),
                status="received",
            )
            .on_conflict_do_nothing(constraint="uq_documents_case_sha256")
            .returning(DocumentRow.id)
        )
        await session.commit()
        created = inserted is not None  # False: a concurrent upload of the same bytes won
        row = await _by_digest(session=session, ref=ref, sha256=digest)
        assert row is not None
        if created:
            log.info("document stored case=%s id=%s kind=%s size=%d", ref, doc_id, kind, len(data))
    elif not await asyncio.to_thread(blobs.exists, row.storage_key):
        # self-heal: the row survived but its bytes did not; we have them in hand
        log.warning("document blob missing, rewriting case=%s id=%s", ref, row.id)
        await asyncio.to_thread(blobs.put, row.storage_key, data)

    # A repeat upload notifies again: the first attempt's signal may have failed.
    notified = await notify_workflow(
        temporal=temporal, case=case, document_id=row.id, actor=uploaded_by
    )
    view = DocumentView.model_validate(row)
    return DocumentUploaded(**view.model_dump(), created=created, workflow_notified=notified)


async def _by_digest(*, session: AsyncSession, ref: str, sha256: str) -> DocumentRow | None:
    return await session.scalar(
        select(DocumentRow)
        .where(DocumentRow.case_ref == ref, DocumentRow.sha256 == sha256)
        .execution_options(populate_existing=True)
    )


async def notify_workflow(*, temporal: Client, case: Case, document_id: str, actor: str) -> bool:
    """Signal the upload by name: ``documents_uploaded`` to an engine case,
    ``documents_received`` to a case of the frozen onboarding workflow. False (never an error)
    if the workflow cannot hear it."""
    if case.status == CaseStatus.DRAFT.value:
        return False  # its workflow has not started; the case picks documents up from the DB
    handle = temporal.get_workflow_handle(case.workflow_id)
    name, arg = (
        (DOCUMENTS_UPLOADED, DocumentsUploaded(actor=actor, document_ids=[document_id]))
        if case.engine == ENGINE
        else (FROZEN_DOCUMENTS_RECEIVED, DocumentsReceived(actor=actor, document_ids=[document_id]))
    )
    try:
        await handle.signal(name, arg, rpc_timeout=SIGNAL_TIMEOUT)
    except Exception as e:  # not running, Temporal down, timeout: the upload itself stands
        log.warning(
            "%s not delivered case=%s document=%s error=%s",
            name,
            case.ref,
            document_id,
            type(e).__name__,
        )
        return False
    return True


async def list_documents(*, session: AsyncSession, ref: str) -> DocumentList:
    """A case's documents with their verification status, newest first; 404 if no such case."""
    await _known_case(session=session, ref=ref)
    rows = await session.scalars(
        select(DocumentRow)
        .where(DocumentRow.case_ref == ref)
        .order_by(DocumentRow.uploaded_at.desc(), DocumentRow.id.desc())
    )
    return DocumentList(case_ref=ref, items=[DocumentView.model_validate(r) for r in rows])


async def document_content(
    *, session: AsyncSession, blobs: BlobStore, ref: str, doc_id: str
) -> DocumentContent:
    """A document's bytes, checked against the recorded sha256; 404 unless it is this case's."""
    row = await session.scalar(
        select(DocumentRow).where(DocumentRow.id == doc_id, DocumentRow.case_ref == ref)
    )
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND, detail=f"no document {doc_id} on case {ref}"
        )
    try:
        data = await asyncio.to_thread(blobs.get, row.storage_key)
    except BlobNotFoundError:
        log.error("document blob missing case=%s id=%s", ref, doc_id)
        raise HTTPException(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail="the document's content is missing from storage; it has been logged",
        ) from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        log.error("document blob corrupt case=%s id=%s", ref, doc_id)
        raise HTTPException(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail="the document's content failed its integrity check; it has been logged",
        )
    return DocumentContent(data=data, content_type=row.content_type, filename=row.filename)
