"""The machine-readable zone of a passport (TD3: 2 x 44) or an ID card (TD1: 3 x 30, TD2:
2 x 36), found in a document's text and checked with the ``mrz`` package.

Why the MRZ: it is the one part of an identity document built to be read by a machine, and it
checks itself. Each of the document number, the date of birth and the expiry date carries a
check digit, and a final digit covers them all, so a typed-over date or a retouched number
shows. The printed fields above it are for people; we do not try to read them.

OCR gets the MRZ almost right. Before checking, the text is repaired the way MRZ readers do:

- characters outside ``A-Z 0-9 <`` are dropped, or mapped when they are how OCR sees ``<``
  (guillemets, angle brackets, ``(``…), and lower case goes up;
- a line whose run of ``<`` fillers came out a character long or short is put back to its
  fixed length (the fillers are where the OCR miscounts; the fields have fixed places);
- where a field must be digits (dates, check digits), letters that look like digits are read
  as those digits (``O`` → 0, ``I`` → 1, ``S`` → 5, ``B`` → 8), and the other way round where
  a field must be letters (country codes, names).

These repairs never turn one digit into another, so a changed check digit still fails.

The document number mixes letters and digits, so no position rule applies there, and its
check digit cannot tell a misread from a forgery: any look-alike swap (``O``/``0``,
``I``/``1``, ``B``/``8``, …) that fixes the number's check digit fixes the overall one too (the
number is covered by both with the same weights). So nothing is "corrected"; when such a swap
exists, ``number_look_alike`` says which, and the verdict leaves it to a person.

The OCR may give two readings of a line (``TextLine.alternatives``); every combination is
checked and the one with the fewest failed checks is kept.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from integrations.documents.common import TextLine

MRZ_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_AS_FILLER = {
    "\u00ab": "<<",  # guillemet
    "\u2039": "<",
    "\u3008": "<",
    "\uff1c": "<",  # full-width
    "\u2264": "<",
    "(": "<",
    "[": "<",
    "{": "<",
}
# what OCR reads for a letter: X as a times sign, I as a bar
_LOOK_LIKE = {"\u00d7": "X", "\u2715": "X", "|": "I", "$": "S", "\u20ac": "E"}
_TO_DIGIT = str.maketrans({"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "Z": "2",
                           "S": "5", "B": "8", "G": "6", "T": "7"})  # fmt: skip
_TO_ALPHA = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G"})

# (lines, length) of each format
FORMATS: dict[str, tuple[int, int]] = {"TD3": (2, 44), "TD2": (2, 36), "TD1": (3, 30)}
LENGTH_SLACK = 4  # an OCR line this many characters off its format's length is still tried

# digit-only and letter-only positions, per format and line: (start, end) slices
_DIGITS: dict[str, list[list[tuple[int, int]]]] = {
    "TD3": [[], [(9, 10), (13, 20), (21, 28), (43, 44)]],
    "TD2": [[], [(9, 10), (13, 20), (21, 28), (35, 36)]],
    "TD1": [[(14, 15)], [(0, 7), (8, 15), (29, 30)], []],
}
_LETTERS: dict[str, list[list[tuple[int, int]]]] = {
    "TD3": [[(0, 1), (2, 44)], [(10, 13)]],
    "TD2": [[(0, 1), (2, 36)], [(10, 13)]],
    "TD1": [[(0, 1), (2, 5)], [(15, 18)], [(0, 30)]],
}
# the part of a data line after which fillers may be miscounted: (head kept, tail kept)
_FIXED_ENDS: dict[str, list[tuple[int, int] | None]] = {
    "TD3": [None, (28, 2)],
    "TD2": [None, (28, 1)],
    "TD1": [(15, 0), (18, 1), None],
}

_CHECK_NAMES = {
    "document number hash": "document number check digit",
    "birth date hash": "date of birth check digit",
    "expiry date hash": "expiry date check digit",
    "optional data hash": "personal number check digit",
    "optional data 1 hash": "optional data check digit",
    "final hash": "overall check digit",
    "document type format": "document type",
    "valid country code": "issuing country code",
    "valid nationality code": "nationality code",
    "birth date": "date of birth",
    "expiry date": "expiry date",
    "valid genre format": "sex",
    "identifier": "name field",
    "document number format": "document number",
}
CHECK_DIGITS = frozenset(name for key, name in _CHECK_NAMES.items() if key.endswith("hash"))


@dataclass(frozen=True, slots=True)
class MrzRead:
    """What the MRZ says, and which of its checks failed (``failed_checks``, our names)."""

    format: str
    lines: tuple[str, ...]
    document_type: str
    issuer: str
    surname: str
    given_names: str
    number: str
    nationality: str
    birth_date: str  # YYMMDD
    sex: str
    expiry_date: str  # YYMMDD
    failed_checks: tuple[str, ...]
    confidence: float  # the lowest OCR score of its lines (1.0 from a PDF's text layer)
    number_look_alike: str | None = None  # a swap in the number that would pass its check

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.given_names, self.surname) if p)

    @property
    def noun(self) -> str:
        """What the holder would call it."""
        if self.document_type.startswith("P"):
            return "passport"
        if self.document_type[:1] in ("I", "A", "C"):
            return "ID card"
        if self.document_type.startswith("V"):
            return "visa"
        return "travel document"

    @property
    def bad_check_digits(self) -> list[str]:
        return [c for c in self.failed_checks if c in CHECK_DIGITS]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "lines": list(self.lines),
            "document_type": self.document_type,
            "issuer": self.issuer,
            "surname": self.surname,
            "given_names": self.given_names,
            "number": self.number,
            "nationality": self.nationality,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "expiry_date": self.expiry_date,
            "failed_checks": list(self.failed_checks),
            "confidence": self.confidence,
            "number_look_alike": self.number_look_alike,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MrzRead:
        return cls(
            **{
                **data,
                "lines": tuple(data["lines"]),
                "failed_checks": tuple(data["failed_checks"]),
            }
        )


def clean(text: str) -> str:
    """Only MRZ characters, upper case, with OCR's renderings of ``<`` put back."""
    out: list[str] = []
    for ch in text.upper():
        if ch in MRZ_CHARS:
            out.append(ch)
        elif ch in _AS_FILLER:
            out.append(_AS_FILLER[ch])
        elif ch in _LOOK_LIKE:
            out.append(_LOOK_LIKE[ch])
    return "".join(out)


def _looks_like_mrz(line: str) -> bool:
    """Long, and either filler-rich or mostly upper-case letters and digits."""
    return len(line) >= 26 and (line.count("<") >= 2 or line[:2].isalpha())


def _fit(line: str, length: int, fixed: tuple[int, int] | None) -> str:
    """``line`` at exactly ``length``: trailing fillers added or dropped, or, for a data line,
    the optional middle part padded or cut between a kept head and a kept tail."""
    if len(line) == length:
        return line
    if fixed is None or len(line) < fixed[0] + fixed[1]:
        return (line + "<" * length)[:length]
    head, tail = fixed
    middle_len = length - head - tail
    end = len(line) - tail
    middle = line[head:end]
    if len(middle) < middle_len:
        middle = middle + "<" * (middle_len - len(middle))
    else:
        middle = middle[:middle_len]
    return line[:head] + middle + line[end:]


def _force(line: str, spans: list[tuple[int, int]], table: dict[int, str]) -> str:
    chars = list(line)
    for start, end in spans:
        for i in range(start, min(end, len(chars))):
            if chars[i] != "<":
                chars[i] = chars[i].translate(table)
    return "".join(chars)


def repair(fmt: str, lines: list[str]) -> list[str]:
    """Lines of ``fmt`` put to their lengths, with digit and letter positions repaired."""
    count, length = FORMATS[fmt]
    fixed = _FIXED_ENDS[fmt]
    out = []
    for i, line in enumerate(lines[:count]):
        line = _fit(line, length, fixed[i])
        line = _force(line, _DIGITS[fmt][i], _TO_DIGIT)
        line = _force(line, _LETTERS[fmt][i], _TO_ALPHA)
        out.append(line)
    return out


def _checker(fmt: str, code: str) -> Any:
    if fmt == "TD3":
        from mrz.checker.td3 import TD3CodeChecker

        return TD3CodeChecker(code)
    if fmt == "TD2":
        from mrz.checker.td2 import TD2CodeChecker

        return TD2CodeChecker(code)
    from mrz.checker.td1 import TD1CodeChecker

    return TD1CodeChecker(code)


def check(fmt: str, lines: list[str], confidence: float = 1.0) -> MrzRead | None:
    """Check repaired ``lines`` as ``fmt``; None when they are not an MRZ of that shape."""
    code = "\n".join(lines)
    try:
        checker = _checker(fmt, code)
        fields = checker.fields()
        failed = tuple(
            _CHECK_NAMES.get(name, name) for name, ok in checker.report.fields if ok is False
        )
    except Exception:  # the package refuses what is not an MRZ at all (wrong length, charset)
        return None
    return MrzRead(
        format=fmt,
        lines=tuple(lines),
        document_type=str(fields.document_type).replace("<", ""),
        issuer=str(fields.country).replace("<", ""),
        surname=str(fields.surname).replace("<", " ").strip(),
        given_names=str(fields.name).replace("<", " ").strip(),
        number=str(fields.document_number).replace("<", ""),
        nationality=str(fields.nationality).replace("<", ""),
        birth_date=str(fields.birth_date),
        sex=str(fields.sex),
        expiry_date=str(fields.expiry_date),
        failed_checks=failed,
        confidence=confidence,
    )


def _candidates(cleaned: list[tuple[str, float]]) -> list[tuple[str, list[str], float]]:
    """(format, raw lines, confidence) of every run of lines shaped like an MRZ."""
    found = []
    for fmt, (count, length) in FORMATS.items():
        for start in range(len(cleaned) - count + 1):
            run = cleaned[start : start + count]
            if all(abs(len(text) - length) <= LENGTH_SLACK for text, _ in run) and all(
                _looks_like_mrz(text) for text, _ in run
            ):
                texts = [t for t, _ in run]
                confidence = min(c for _, c in run)
                found.append((fmt, texts, confidence))
                # a page turned sideways may list its lines bottom first
                found.append((fmt, texts[::-1], confidence))
    return found


_LOOK_ALIKES: dict[str, str] = {
    "0": "OQD", "O": "0Q", "Q": "0O", "D": "0", "1": "IL", "I": "1L", "L": "1I",
    "8": "B", "B": "8", "5": "S", "S": "5", "2": "Z", "Z": "2", "6": "G", "G": "6",
}  # fmt: skip
# where the document number, its check digit and the overall check sit: (line, start, end)
_NUMBER: dict[str, tuple[int, int, int]] = {"TD3": (1, 0, 9), "TD2": (1, 0, 9), "TD1": (0, 5, 14)}


def check_digit(text: str) -> str:
    """ICAO 9303 check digit: weights 7, 3, 1; A-Z count 10-35, ``<`` 0."""
    total = 0
    for i, ch in enumerate(text):
        value = int(ch) if ch.isdigit() else (ord(ch) - 55 if ch.isalpha() else 0)
        total += value * (7, 3, 1)[i % 3]
    return str(total % 10)


def number_look_alike(fmt: str, lines: list[str]) -> str | None:
    """A swap of one look-alike character in the document number that makes its check digit
    pass (e.g. ``8 read as B at 5``), or None: the evidence that a failure may be the OCR's."""
    line, start, end = _NUMBER[fmt]
    text = lines[line]
    for i in range(start, end):
        for alt in _LOOK_ALIKES.get(text[i], ""):
            number = text[start:i] + alt + text[i + 1 : end]
            if check_digit(number) == text[end]:
                return f"{text[i]} as {alt} at {i - start + 1}"
    return None


def find_mrz(lines: list[TextLine]) -> MrzRead | None:
    """The MRZ in a document's lines, or None.

    Every run of MRZ-shaped lines is tried as each format (so a TD2 card is not misread as a
    damaged passport), with each line's alternative readings; the candidate with the fewest
    failed check digits, then the fewest failed checks, wins.
    """
    cleaned = [(clean(line.text), line.confidence) for line in lines]
    options = {clean(line.text): [clean(t) for t in line.alternatives] for line in lines}
    cleaned = [(text, conf) for text, conf in cleaned if _looks_like_mrz(text)]
    best: MrzRead | None = None
    for fmt, raw, confidence in _candidates(cleaned):
        for combination in itertools.product(*([t, *options.get(t, [])] for t in raw)):
            read = _checked(fmt, list(combination), confidence)
            if read is not None and (best is None or _rank(read) < _rank(best)):
                best = read
    return best


def _checked(fmt: str, raw: list[str], confidence: float) -> MrzRead | None:
    repaired = repair(fmt, raw)
    read = check(fmt, repaired, confidence)
    if read is not None and "document number check digit" in read.failed_checks:
        read = dataclasses.replace(read, number_look_alike=number_look_alike(fmt, repaired))
    return read


def _rank(read: MrzRead) -> tuple[int, int, int]:
    """Lower is better: fewer failed check digits, fewer failed checks, the larger format."""
    size = FORMATS[read.format][0] * FORMATS[read.format][1]
    return (len(read.bad_check_digits), len(read.failed_checks), -size)
