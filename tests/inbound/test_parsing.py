"""The pure parts of inbound email: credentials, quote stripping, case references, charsets,
document kinds."""

from __future__ import annotations

import base64

from pydantic import SecretStr

from api.services import inbound_email as svc
from core.settings import Settings
from schemas.documents import DocumentKind
from tests.conftest import test_settings


def _settings() -> Settings:
    return test_settings(
        inbound_email_token=SecretStr("tok"),
        inbound_email_user="sg",
        inbound_email_password=SecretStr("pw:with:colons"),
    )


def _basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


def test_token_and_basic_auth() -> None:
    settings = _settings()
    assert svc.token_ok(settings, "tok")
    assert not svc.token_ok(settings, "tok2")
    assert not svc.token_ok(settings, "")
    assert svc.basic_auth_ok(settings, _basic("sg:pw:with:colons"))
    assert svc.basic_auth_ok(settings, "basic " + _basic("sg:pw:with:colons")[6:])
    for header in (
        None,
        "",
        "Bearer x",
        _basic("sg:pw"),
        _basic("SG:pw:with:colons"),
        _basic("sg"),
        "Basic ???",
    ):
        assert not svc.basic_auth_ok(settings, header), header


def test_reply_text_strips_quoted_history() -> None:
    gmail = "Yes please.\n\nOn Mon, 1 Dec 2026 at 10:00, Support <s@x.example>\nwrote:\n> old\n"
    assert svc.reply_text(gmail) == "Yes please."
    assert svc.reply_text("A\r\n> quoted\r\nB\r\n") == "A\nB"
    outlook = "Done.\n\n-----Original Message-----\nFrom: us\nSent: today\n"
    assert svc.reply_text(outlook) == "Done."
    assert svc.reply_text("On time, as promised.\nThanks") == "On time, as promised.\nThanks"
    assert svc.reply_text("nul\x00 and \x1b escape") == "nul and  escape"


def test_message_text_is_never_empty_and_capped() -> None:
    assert svc.message_text("", []) == "(an empty email)"
    long = svc.message_text("x" * 5000, [])
    assert len(long) == svc.MESSAGE_MAX_CHARS and long.endswith("…")


def test_case_references_from_plus_addresses_and_subjects() -> None:
    assert svc.plus_refs(["cases+acme-0001@in.example", "cases@in.example", "x+@in.example"]) == [
        "acme-0001"
    ]
    assert svc.subject_refs("Re: [Client replied] ORD-12AB: PO-2026-0042, C-7K2M9QPRTX.") == [
        "ORD-12AB",
        "PO-2026-0042",
        "C-7K2M9QPRTX",
    ]
    assert svc.subject_refs("Re: hello") == []
    assert svc.subject_refs("invoiceABC-123") == []  # glued to a longer word


def test_charsets_decode_latin_fallbacks_again() -> None:
    # Starlette read windows-1252 bytes as Latin-1 (they are not UTF-8): decode them again
    raw = "“quoted” café".encode("cp1252")
    assert svc._recode(raw.decode("latin-1"), "windows-1252") == "“quoted” café"
    assert svc._recode("café", "UTF-8") == "café"
    assert svc._recode("日本", "iso-2022-jp") == "日本"  # read as UTF-8: left alone
    assert svc._recode("abc", "no-such-charset") == "abc"


def test_document_kind_from_the_file_name() -> None:
    assert svc.document_kind("Proof of Address - March.pdf") is DocumentKind.PROOF_OF_ADDRESS
    assert svc.document_kind("government-id.jpg") is DocumentKind.GOVERNMENT_ID
    assert svc.document_kind("scan0001.pdf") is DocumentKind.OTHER


def test_html_to_text() -> None:
    html = "<p>Line one<br>Line&nbsp;two</p><blockquote>quoted</blockquote><style>x{}</style>"
    assert svc.reply_text(svc.html_to_text(html)) == "Line one\nLine\xa0two"
