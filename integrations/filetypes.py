"""What an uploaded file really is, judged by its bytes (never its name or declared type).

Only PDF, PNG and JPEG are accepted. ``filetype`` (pure Python, no libmagic) identifies the
format from its magic numbers; on top of that a small structural check per format rejects files
that merely start with the right bytes (a truncated PDF, a PNG without its header chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import filetype

ALLOWED_CONTENT_TYPES: dict[str, str] = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
}
ALLOWED_DESCRIPTION = "PDF, PNG or JPEG"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PDF_TRAILER_WINDOW = 2048  # %%EOF sits at the end, possibly followed by whitespace


@dataclass(frozen=True, slots=True)
class Sniffed:
    """The verdict on a file's bytes: its real content type, or why it is refused."""

    content_type: str | None
    detected: str | None  # what the bytes look like, for logs (e.g. "application/zip")

    @property
    def allowed(self) -> bool:
        return self.content_type is not None


def _looks_like_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-_PDF_TRAILER_WINDOW:]


def _looks_like_png(data: bytes) -> bool:
    # signature, then the first chunk must be a 13-byte IHDR
    return (
        data.startswith(_PNG_SIGNATURE)
        and data[8:12] == b"\x00\x00\x00\x0d"
        and data[12:16] == b"IHDR"
    )


def _looks_like_jpeg(data: bytes) -> bool:
    # SOI marker, then another marker; EOI somewhere after (trailing bytes are tolerated)
    return len(data) >= 4 and data[:3] == b"\xff\xd8\xff" and b"\xff\xd9" in data[3:]


_STRUCTURE = {
    "application/pdf": _looks_like_pdf,
    "image/png": _looks_like_png,
    "image/jpeg": _looks_like_jpeg,
}


def sniff(data: bytes) -> Sniffed:
    """Identify ``data``; ``allowed`` only for a well-formed PDF, PNG or JPEG."""
    kind = filetype.guess(data) if data else None
    detected = kind.mime if kind is not None else None
    if detected in _STRUCTURE and _STRUCTURE[detected](data):
        return Sniffed(content_type=detected, detected=detected)
    return Sniffed(content_type=None, detected=detected)
