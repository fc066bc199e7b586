"""What a proof of address (or a company document) says: its dates and the names on it.

A utility bill or a bank statement has no machine-readable zone, so the checks are the ones a
person makes: is it addressed to the client, and is it recent? Recent means its newest date
that is not in the future (the statement or issue date; a due date ahead is ignored, an older
"customer since" date loses to it) falls inside the freshness window.

Dates are found in the forms bills use: ``2026-03-03``, ``3 March 2026``, ``3rd Mar 2026``,
``March 3, 2026``, ``03/03/2026`` (day first, unless the client lives where the month comes
first), and month names in English, German, French, Spanish, Italian and Dutch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from integrations.documents.common import TextLine

_MONTH_NAMES: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan januar janvier enero gennaio januari jänner janv ene gen",
        "february feb februar fevrier février febrero febbraio februari fév fev",
        "march mar märz maerz marz mars marzo maart mär",
        "april apr avril abril aprile",
        "may mai mayo maggio mei",
        "june jun juni juin junio giugno",
        "july jul juli juillet julio luglio juil",
        "august aug august aout août agosto augustus ago",
        "september sep sept septembre septiembre settembre set",
        "october oct oktober octobre octubre ottobre okt ott",
        "november nov novembre noviembre",
        "december dec dezember décembre decembre diciembre dicembre dez dic",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTH_NAMES[_name] = _number

_MONTH = r"(?P<month>[A-Za-zÀ-ÿ]{3,10})\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th|\.)?"
_YEAR = r"(?P<year>\d{4})"
_PATTERNS = [
    re.compile(r"\b(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})\b"),
    re.compile(rf"\b{_DAY}\s+(?:of\s+|de\s+)?{_MONTH},?\s+(?:de\s+)?{_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE),
]
_NUMERIC = re.compile(r"\b(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<year>\d{4})\b")
MONTH_FIRST_COUNTRIES = frozenset({"US", "PH", "FM", "MH", "PW"})

EARLIEST = date(1900, 1, 1)


def _day(year: int, month: int, day: int) -> date | None:
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    return found if found >= EARLIEST else None


_ZERO_STARTS_WORD = re.compile(r"\b0(?=[a-z]{2})|(?<=\d)0(?=(?:ct|kt|tt)[a-z]*)")  # 180ctober
_ZERO_IN_WORD = re.compile(r"(?<=[A-Za-z])0(?=[a-z])")
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z]{3})")


def ocr_spacing(text: str) -> str:
    """Undo what OCR does to dates: ``6 0ctober2026`` (a zero for an O, spaces lost) reads
    ``6 October 2026``. Never changes a digit of a number."""
    text = _ZERO_IN_WORD.sub("o", _ZERO_STARTS_WORD.sub("O", text))
    return _LETTER_DIGIT.sub(" ", text)


def find_dates(text: str, *, month_first: bool = False) -> list[date]:
    """Every calendar date written in ``text``, in order of appearance, without repeats."""
    text = ocr_spacing(text)
    found: list[tuple[int, date]] = []
    taken: list[tuple[int, int]] = []

    def add(match: re.Match[str], value: date | None) -> None:
        span = match.span()
        if value is None or any(s < span[1] and span[0] < e for s, e in taken):
            return
        taken.append(span)
        found.append((span[0], value))

    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            month_text = m.group("month")
            month = (
                int(month_text)
                if month_text.isdigit()
                else _MONTH_NAMES.get(month_text.lower().rstrip("."), 0)
            )
            add(m, _day(int(m.group("year")), month, int(m.group("day"))) if month else None)
    for m in _NUMERIC.finditer(text):
        a, b, year = int(m.group("a")), int(m.group("b")), int(m.group("year"))
        day, month = (b, a) if month_first else (a, b)
        if month > 12 >= day:  # 25/12/2026 read month-first: it can only be day-first
            day, month = month, day
        add(m, _day(year, month, day))
    seen: set[date] = set()
    ordered = []
    for _pos, value in sorted(found, key=lambda x: x[0]):
        if value not in seen:
            seen.add(value)
            ordered.append(value)
    return ordered


_ISSUE_LABEL = re.compile(
    r"statement\s*date|date\s*of\s*(?:issue|statement|bill|invoice)|issue\s*date|issued|"
    r"bill\s*date|invoice\s*date|letter\s*date|tax\s*point|^\s*date\s*:|datum|fecha|"
    r"date\s*d.?[ée]mission",
    re.IGNORECASE,
)
_OTHER_DATE = re.compile(
    r"due|pay\s*by|payable|before|since|birth|born|until|expir|valid|next|from|opened",
    re.IGNORECASE,
)


def document_date(lines: Iterable[TextLine], as_of: date, *, month_first: bool) -> date | None:
    """The document's own date, not after ``as_of`` (None: none found).

    A date on a line that says what it is ("Statement date", "Date of issue", "Issued") wins;
    otherwise the newest date on a line that is not another kind of date (a due date, "customer
    since", a date of birth, a validity end).
    """
    labelled: list[date] = []
    plain: list[date] = []
    for line in lines:
        found = [d for d in find_dates(line.text, month_first=month_first) if d <= as_of]
        if not found:
            continue
        text = ocr_spacing(line.text)
        if _ISSUE_LABEL.search(text):
            labelled.extend(found)
        elif not _OTHER_DATE.search(text):
            plain.extend(found)
    if labelled:
        return max(labelled)
    return max(plain) if plain else None


_TITLES = re.compile(
    r"^(?:(?:mr|mrs|ms|miss|mx|dr|prof|herr|frau|mme|mlle|m|sr|sra)\.?\s+)+", re.IGNORECASE
)  # a title glued to the name ("MsAda") is split off by _GLUED first
_LABEL = re.compile(r"^[A-Za-z ]{2,30}:\s*")  # "Account holder: Ada Lovelace"


_GLUED = re.compile(r"(?<=[a-zß-ÿ])(?=[A-ZÀ-Þ])")  # "ZoePapadopoulos": OCR lost the space


def name_candidates(lines: Iterable[TextLine]) -> list[str]:
    """The document's lines that could hold a name: each line, without a leading label or
    title (also with the spaces OCR lost put back), and each pair of adjacent lines (a name
    broken over two lines)."""
    texts = [line.text.strip() for line in lines if line.text.strip()]
    out: list[str] = []
    for i, text in enumerate(texts):
        spaced = _GLUED.sub(" ", text)
        plain = _TITLES.sub("", _LABEL.sub("", spaced)).strip()
        if plain and any(ch.isalpha() for ch in plain):
            out.append(plain)
        if i + 1 < len(texts) and len(text) <= 40 and len(texts[i + 1]) <= 40:
            out.append(f"{text} {texts[i + 1]}")
    return out
