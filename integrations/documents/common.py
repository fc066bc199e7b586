"""What every reader shares: a line of text with how sure the reader was, the caps a reader
works within, and the one exception a reader raises for a file it cannot read.

``Unreadable`` carries a short code the verdicts know (``too_large``, ``no_pages``, …) and a
detail for staff. It is how a broken, empty, oversized or slow file becomes a needs_review
verdict instead of a 500 or a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text as a reader found it. ``confidence`` is the OCR's score (0..1); a
    PDF's text layer is exact, so 1.0. OCR may add what it read on a second try."""

    text: str
    confidence: float = 1.0
    alternatives: tuple[str, ...] = ()  # other readings of the same line, surest first


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Caps on the work one document may cost a worker (from settings). A file over a cap is
    not read at all: it goes to a person (needs_review)."""

    max_bytes: int = 10 * MIB
    max_pages: int = 20
    max_pixels: int = 40_000_000
    timeout_seconds: float = 20.0
    ocr_max_side: int = 2000  # images are scaled down to this before OCR (speed, memory)


class Unreadable(Exception):
    """The file could not be read. ``code`` is for the verdict, ``detail`` for staff."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
