"""Readable documents for tests, generated (``bench/document_data.py``), never committed.

The default person is the tests' client, Ada Lovelace (``tests.factories.profile``); her
passport carries a date of birth that tests put on the profile when they want it compared.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from bench import document_data as dd

ADA = dd.ADA
GRACE = dd.Person(
    given="Grace",
    surname="Hopper",
    sex="F",
    birth=date(1976, 12, 9),
    mrz_nationality="USA",
    nationality="US",
    country_name="UNITED STATES",
    number="X12345678",
)


def _lines(p: dd.Person, expires: date, tamper: bool) -> list[str]:
    lines = dd.td3(p, expires)
    return dd.tamper_check_digit(lines, random.Random(3)) if tamper else lines


def passport_png(
    p: dd.Person = ADA, *, expires: date | None = None, tamper: bool = False, seed: int = 1
) -> bytes:
    """A photographed passport page (OCR reads it)."""
    expires = expires or date.today() + timedelta(days=3000)
    return dd.passport_image(p, expires, seed=seed, mrz_lines=_lines(p, expires, tamper))


def passport_pdf(p: dd.Person = ADA, *, expires: date | None = None, tamper: bool = False) -> bytes:
    """A passport page exported as a PDF with a text layer (read without OCR: fast)."""
    expires = expires or date.today() + timedelta(days=3000)
    return dd.passport_pdf(p, expires, mrz_lines=_lines(p, expires, tamper))


def bill_pdf(name: str = "Ada Lovelace", *, issued: date | None = None, seed: int = 1) -> bytes:
    """A utility bill addressed to ``name`` and dated ``issued`` (default: ten days ago)."""
    return dd.proof_of_address_pdf(name, issued or date.today() - timedelta(days=10), seed=seed)


empty_pdf = dd.empty_pdf
sign_in_screenshot = dd.sign_in_screenshot
huge_png = dd.huge_png
