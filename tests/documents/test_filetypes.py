"""Sniffing by content: PDF, PNG and JPEG pass; disguised or broken files do not."""

from __future__ import annotations

import pytest

from api.services.documents import content_disposition, sanitize_filename
from integrations.filetypes import sniff
from tests.documents import samples


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (samples.pdf(), "application/pdf"),
        (samples.png(), "image/png"),
        (samples.png(3, 2), "image/png"),
        (samples.JPEG, "image/jpeg"),
    ],
)
def test_real_files_are_recognised(data: bytes, content_type: str) -> None:
    result = sniff(data)
    assert result.allowed and result.content_type == content_type


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (samples.HTML, None),
        (samples.zip_archive(), "application/zip"),
        (samples.EXE, "application/x-msdownload"),
        (b"", None),
        (b"just some text", None),
        (b"%PDF-1.4\n<html>no trailer</html>", "application/pdf"),  # truncated / fake PDF
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png"),  # signature without IHDR
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),  # SOI but no image
    ],
)
def test_other_content_is_refused(data: bytes, detected: str | None) -> None:
    result = sniff(data)
    assert not result.allowed and result.content_type is None
    assert result.detected == detected


@pytest.mark.parametrize(
    ("given", "content_type", "expected"),
    [
        ("../../etc/passwd.pdf", "application/pdf", "passwd.pdf"),
        ("C:\\Users\\ann\\scan.PDF", "application/pdf", "scan.PDF"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("invoice\u202egpj.exe", "application/pdf", "invoicegpj.exe.pdf"),
        ("a\x00b\r\n.png", "image/png", "ab.png"),
        ('quote"d.pdf', "application/pdf", "quoted.pdf"),
        ("...", "application/pdf", "document.pdf"),
        ("", "image/png", "document.png"),
        (None, "image/png", "document.png"),
        ("statement", "application/pdf", "statement.pdf"),
        ("x" * 500 + ".pdf", "application/pdf", "x" * 116 + ".pdf"),
    ],
)
def test_filenames_are_sanitised(given: str | None, content_type: str, expected: str) -> None:
    assert sanitize_filename(given, content_type=content_type) == expected


def test_content_disposition_is_ascii_with_a_utf8_alternative() -> None:
    assert content_disposition("passwd.pdf") == 'attachment; filename="passwd.pdf"'
    header = content_disposition("Relevé.pdf")
    assert header.startswith('attachment; filename="Relev_.pdf"; ')
    assert header.endswith("filename*=UTF-8''Relev%C3%A9.pdf")
