"""Read a document's bytes into text (and an MRZ), within caps, in a thread, with a timeout.

Why a thread: OCR and PDF parsing are CPU-bound and blocking; on the event loop they would
stall every other activity of the worker (and its heartbeats). Why a timeout: a hostile or
merely odd file (a PDF with a pathological content stream, a vast image) must not hold a
worker for minutes. The thread is not killed on timeout (Python cannot), but the executor is
small, so a few stuck reads cannot multiply, and the verdict is given without waiting.

Every way a read can fail ends as a ``Reading`` with ``unreadable`` set: the caller judges
it needs_review. ``read`` never raises for a bad file.

The order of attempts, cheapest first:

- a PDF's text layer (exact); for an ID document, an MRZ in it ends the read;
- otherwise OCR of the PDF's page images, or of the image itself, turned until an MRZ is
  found (ID documents) or some text is (everything else).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from integrations.documents import ocr as ocr_mod
from integrations.documents.common import ReadLimits, TextLine, Unreadable
from integrations.documents.mrz import MrzRead, find_mrz
from integrations.documents.pdf_text import read_pdf

log = logging.getLogger(__name__)

READER_VERSION = 1
"""Bumped when reading changes, so readings cached on documents are read again."""

PDF = "application/pdf"
IMAGES = frozenset({"image/png", "image/jpeg"})
MIN_OCR_TEXT = 20  # characters of OCR text that make a page "read" when no MRZ is wanted
MAX_STORED_LINES = 400
MAX_STORED_CHARS = 200
TRANSIENT = frozenset({"timeout", "missing_file", "corrupt_file", "reader_error"})


@dataclass(slots=True)
class Reading:
    """What was read from one file. ``unreadable_code`` set: nothing usable was read."""

    source: str  # pdf_text | ocr | pdf_ocr | none
    lines: list[TextLine] = field(default_factory=list)
    mrz: MrzRead | None = None
    pages: int = 0
    seconds: float = 0.0
    unreadable_code: str | None = None
    unreadable_detail: str | None = None
    version: int = READER_VERSION

    @property
    def readable(self) -> bool:
        return self.unreadable_code is None

    @property
    def transient(self) -> bool:
        """A failure that may not happen again (a timeout, a file missing from storage):
        not worth remembering."""
        return self.unreadable_code in TRANSIENT

    @classmethod
    def failed(cls, exc: Unreadable, seconds: float = 0.0) -> Reading:
        return cls(
            source="none", unreadable_code=exc.code, unreadable_detail=exc.detail, seconds=seconds
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data to keep on the document (capped), so a re-check does not re-read."""
        return {
            "version": self.version,
            "source": self.source,
            "lines": [
                [
                    line.text[:MAX_STORED_CHARS],
                    round(line.confidence, 3),
                    [alt[:MAX_STORED_CHARS] for alt in line.alternatives],
                ]
                for line in self.lines[:MAX_STORED_LINES]
            ],
            "mrz": self.mrz.as_dict() if self.mrz is not None else None,
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
            "unreadable_code": self.unreadable_code,
            "unreadable_detail": self.unreadable_detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reading | None:
        """A stored reading, or None if it is from another reader version or malformed."""
        try:
            if data.get("version") != READER_VERSION:
                return None
            return cls(
                source=str(data["source"]),
                lines=[
                    TextLine(str(item[0]), float(item[1]), tuple(item[2] if len(item) > 2 else ()))
                    for item in data.get("lines") or []
                ],
                mrz=MrzRead.from_dict(data["mrz"]) if data.get("mrz") else None,
                pages=int(data.get("pages") or 0),
                seconds=float(data.get("seconds") or 0.0),
                unreadable_code=data.get("unreadable_code"),
                unreadable_detail=data.get("unreadable_detail"),
            )
        except (KeyError, TypeError, ValueError):
            return None


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _shared_executor(workers: int) -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="doc-read")
        return _executor


class DocumentReader:
    """Reads documents for one worker process: the caps, the OCR engine and the threads."""

    def __init__(
        self,
        limits: ReadLimits | None = None,
        *,
        engine: ocr_mod.OcrEngine | None = None,
        threads: int = 2,
    ) -> None:
        self.limits = limits or ReadLimits()
        self._engine = engine
        self._threads = threads

    @property
    def engine(self) -> ocr_mod.OcrEngine:
        if self._engine is None:
            self._engine = ocr_mod.shared_engine()
        return self._engine

    async def read(
        self, data: bytes, content_type: str, *, want_mrz: bool, budget_seconds: float | None = None
    ) -> Reading:
        """Read ``data`` in a worker thread; a ``Reading`` always, never an exception."""
        started = time.monotonic()
        limit = self.limits.timeout_seconds
        if budget_seconds is not None:
            limit = min(limit, budget_seconds)
        if len(data) > self.limits.max_bytes:
            return Reading.failed(
                Unreadable(
                    "too_large",
                    f"the file is {len(data):,} bytes; at most {self.limits.max_bytes:,} are read",
                )
            )
        loop = asyncio.get_running_loop()
        deadline = started + limit
        job = loop.run_in_executor(
            _shared_executor(self._threads), self.read_sync, data, content_type, want_mrz, deadline
        )
        try:
            reading = await asyncio.wait_for(job, timeout=max(limit, 0.1))
        except TimeoutError:
            log.warning("document read timed out after %.1fs", limit)
            reading = Reading.failed(
                Unreadable("timeout", f"reading took longer than {limit:.0f} s"),
                seconds=time.monotonic() - started,
            )
        except Exception as exc:  # a reader bug must not fail the verification
            log.exception("document read failed")
            reading = Reading.failed(
                Unreadable("reader_error", f"the reader failed ({type(exc).__name__})"),
                seconds=time.monotonic() - started,
            )
        reading.seconds = time.monotonic() - started
        return reading

    def read_sync(
        self, data: bytes, content_type: str, want_mrz: bool, deadline: float | None = None
    ) -> Reading:
        """The blocking read (tests and the bench call it directly)."""
        started = time.monotonic()
        deadline = deadline if deadline is not None else started + self.limits.timeout_seconds
        try:
            if content_type == PDF:
                reading = self._pdf(data, want_mrz, deadline)
            elif content_type in IMAGES:
                image = ocr_mod.open_image(data, self.limits)
                lines = self._ocr(image, want_mrz, deadline)
                reading = Reading(source="ocr", lines=lines, pages=1)
            else:
                raise Unreadable("unsupported", f"{content_type} is not read")
        except Unreadable as exc:
            return Reading.failed(exc, seconds=time.monotonic() - started)
        if want_mrz:
            reading.mrz = find_mrz(reading.lines)
        reading.seconds = time.monotonic() - started
        return reading

    def _pdf(self, data: bytes, want_mrz: bool, deadline: float) -> Reading:
        content = read_pdf(data, max_pages=self.limits.max_pages)
        enough = content.has_text and (not want_mrz or find_mrz(content.lines) is not None)
        if enough or not content.images:
            if not content.has_text and not content.images:
                raise Unreadable("no_text", "the PDF has neither text nor images to read")
            return Reading(source="pdf_text", lines=content.lines, pages=content.pages)
        lines = list(content.lines)
        for image in content.images:
            if time.monotonic() > deadline:
                break
            lines.extend(self._ocr(ocr_mod.prepare(image, self.limits), want_mrz, deadline))
            if want_mrz and find_mrz(lines) is not None:
                break
        return Reading(source="pdf_ocr", lines=lines, pages=content.pages)

    def _ocr(self, image: Any, want_mrz: bool, deadline: float) -> list[TextLine]:
        return ocr_mod.read_image(
            image,
            self.engine,
            judge=_mrz_grade if want_mrz else _text_grade,
            deadline=deadline,
            long_lines_only=want_mrz,
            rotations=ocr_mod.ROTATIONS if want_mrz else ocr_mod.TEXT_ROTATIONS,
        )


def _mrz_grade(lines: list[TextLine]) -> int:
    """Done when an MRZ is found whose fields are well-formed (only check digits may fail: a
    changed digit is the document's fault, and turning the page will not fix it); usable
    when an MRZ-shaped text is found with malformed fields (maybe the wrong way up)."""
    found = find_mrz(lines)
    if found is None:
        return ocr_mod.NOTHING
    malformed = [c for c in found.failed_checks if c not in found.bad_check_digits]
    return ocr_mod.USABLE if malformed else ocr_mod.DONE


def _text_grade(lines: list[TextLine]) -> int:
    return ocr_mod.DONE if sum(len(x.text) for x in lines) >= MIN_OCR_TEXT else ocr_mod.NOTHING
