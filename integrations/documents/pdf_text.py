"""The text of a PDF, read with pypdf (pure Python: nothing to install on the worker).

A PDF made by software (a bank statement, an e-passport scan app's export) carries a text
layer: reading it is exact and fast. A scanned PDF carries only page images: those are
handed back for OCR. A PDF with no pages, one that is encrypted, or one pypdf cannot parse is
``Unreadable``; so is one with more pages than the cap (a 300-page upload is not a utility
bill, and reading it would hold a worker).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

from PIL import Image

from integrations.documents.common import TextLine, Unreadable

log = logging.getLogger(__name__)

MAX_IMAGES = 4  # page images handed to OCR; a scanned proof of address is a page or two
MIN_TEXT_CHARS = 20  # fewer characters than this in the text layer: treat as a scan


@dataclass(slots=True)
class PdfContent:
    pages: int
    lines: list[TextLine] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return sum(len(line.text) for line in self.lines) >= MIN_TEXT_CHARS


def read_pdf(data: bytes, *, max_pages: int, want_images: bool = True) -> PdfContent:
    """The text lines of every page and, when asked, the page images (for OCR)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("encrypted", "the PDF is password-protected")
        pages = len(reader.pages)
    except Unreadable:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise Unreadable("broken_file", f"pypdf could not open it ({type(exc).__name__})") from None
    if pages == 0:
        raise Unreadable("no_pages", "the PDF has no pages")
    if pages > max_pages:
        raise Unreadable(
            "too_many_pages", f"the PDF has {pages} pages; at most {max_pages} are read"
        )

    content = PdfContent(pages=pages)
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # a damaged content stream: the other pages may still read
            log.info("pdf page %d text unreadable: %s", number, type(exc).__name__)
            text = ""
        content.lines.extend(TextLine(t.strip()) for t in text.splitlines() if t.strip())
        if want_images and len(content.images) < MAX_IMAGES:
            content.images.extend(_page_images(page, MAX_IMAGES - len(content.images)))
    return content


def _page_images(page: object, room: int) -> list[Image.Image]:
    """The images on one page (a scan is one image per page), at most ``room`` of them."""
    found: list[Image.Image] = []
    try:
        for item in getattr(page, "images", []):
            image = getattr(item, "image", None)
            if isinstance(image, Image.Image):
                found.append(image)
            if len(found) >= room:
                break
    except Exception as exc:  # an image filter pypdf cannot decode: the text may still do
        log.info("pdf page images unreadable: %s", type(exc).__name__)
    return found
