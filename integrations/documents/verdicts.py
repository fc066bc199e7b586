"""Judge what was read: machine_verified, needs_review or rejected, with reasons.

Why three verdicts and not two: "the machine is sure it is fine" and "the machine is sure it
is wrong" are the only answers that may skip a person. Everything else — a file we could not
read, a name that is close but not the same, an MRZ the OCR was unsure of — goes to a person
(needs_review). So a rejection is only given for what the document itself proves: an expiry
date in the past, check digits that do not add up (read cleanly), a stale statement date, a
visa where a passport was asked for.

Each ``Finding`` has two texts: ``staff`` (what was read and compared, for the console) and
``client`` (what to fix, in plain words, for the portal and the "documents needed" message).
The client text never repeats what the document says about other people, nor internal scores.

What the uploader typed (dates) is never trusted: when it disagrees with the document, that
is noted for staff, and the document's own value is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from integrations.documents import address as addr
from integrations.documents.mrz import CHECK_DIGITS
from integrations.documents.names import best_match, same_person
from integrations.documents.reader import Reading

MRZ_SURE = 0.85
"""OCR score from which a failed check digit is the document's fault, not the OCR's."""


class Verdict(StrEnum):
    MACHINE_VERIFIED = "machine_verified"
    NEEDS_REVIEW = "needs_review"
    REJECTED = "rejected"


_SEVERITY = {Verdict.MACHINE_VERIFIED: 0, Verdict.NEEDS_REVIEW: 1, Verdict.REJECTED: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    verdict: Verdict
    staff: str
    client: str

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "verdict": self.verdict.value,
            "staff": self.staff,
            "client": self.client,
        }


@dataclass(slots=True)
class Judgement:
    verdict: Verdict
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict != Verdict.MACHINE_VERIFIED]


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """What the application says about the client, as the judges need it."""

    name: str
    client_type: str = "individual"
    country: str | None = None  # ISO alpha-2, residence or incorporation
    nationality: str | None = None  # ISO alpha-2
    date_of_birth: date | None = None

    @property
    def entity_type(self) -> str:
        return "person" if self.client_type == "individual" else "entity"


def spoken(day: date) -> str:
    """3 March 2026: how a client reads a date (no leading zero, no ISO)."""
    return f"{day.day} {day.strftime('%B')} {day.year}"


def _judged(findings: list[Finding], facts: dict[str, Any]) -> Judgement:
    verdict = Verdict.MACHINE_VERIFIED
    for f in findings:
        if _SEVERITY[f.verdict] > _SEVERITY[verdict]:
            verdict = f.verdict
    return Judgement(verdict=verdict, findings=findings, facts=facts)


_UNREADABLE_CLIENT = {
    "too_large": "the file is too large for us to read; please upload a smaller photo or scan",
    "too_many_pixels": "the image is too large for us to read; please upload a smaller photo",
    "too_small": "the image is too small to read; please upload a clear photo or scan",
    "too_many_pages": "the PDF has too many pages; please upload only the pages we asked for",
    "no_pages": "the PDF you sent has no pages; please upload the document itself",
    "encrypted": "the PDF is password-protected; please upload it without a password",
    "no_text": "we could not find any text in the file; please upload a clear photo or scan",
    "timeout": "we could not read the file in time; our team will check it",
}
_UNREADABLE_DEFAULT = (
    "we could not read the file; please upload a clear photo or scan (PDF, PNG or JPEG)"
)


def unreadable(reading: Reading) -> Finding:
    code = reading.unreadable_code or "unreadable"
    return Finding(
        code="unreadable",
        verdict=Verdict.NEEDS_REVIEW,
        staff=f"could not be read ({code}): {reading.unreadable_detail or 'no detail'}",
        client=_UNREADABLE_CLIENT.get(code, _UNREADABLE_DEFAULT),
    )


def mrz_date(yymmdd: str, *, as_of: date, birth: bool) -> date | None:
    """An MRZ date with its century, chosen around ``as_of`` (never the machine's clock): a
    birth date is the latest one not after ``as_of``; an expiry date is the one nearest to
    ``as_of`` (so within about 50 years either side of it)."""
    try:
        yy, mm, dd = int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    except ValueError:
        return None
    century = as_of.year - as_of.year % 100
    candidates = []
    for start in (century - 100, century, century + 100):
        try:
            candidates.append(date(start + yy, mm, dd))
        except ValueError:  # no such day (a 29 February in a century's non-leap year)
            continue
    if not candidates:
        return None
    if birth:
        past = [d for d in candidates if d <= as_of]
        return max(past) if past else None
    return min(candidates, key=lambda d: abs(d - as_of))


def nationality_iso2(code: str) -> str | None:
    """An MRZ nationality (ISO alpha-3, or ``D`` for Germany) as alpha-2; None if it names
    no country (UN documents, stateless, refugee)."""
    code = code.replace("<", "").upper()
    if code == "D":
        return "DE"
    if code.startswith("GB") and len(code) == 3:  # GBR and the other British nationalities
        return "GB"
    import pycountry

    found = pycountry.countries.get(alpha_3=code)
    return str(found.alpha_2) if found is not None else None


def judge_identity(
    reading: Reading,
    client: ClientFacts,
    *,
    as_of: date,
    typed_expiry: date | None = None,
) -> Judgement:
    """A passport or ID card: its MRZ must check out, be current, and be the client's."""
    if not reading.readable:
        return _judged([unreadable(reading)], {})
    mrz = reading.mrz
    if mrz is None:
        return _judged(
            [
                Finding(
                    "no_mrz",
                    Verdict.NEEDS_REVIEW,
                    f"no machine-readable zone found ({reading.source}, "
                    f"{len(reading.lines)} lines of text)",
                    "we could not find the machine-readable lines of a passport or ID card "
                    "(the lines with <<< at the bottom of the photo page); please upload a "
                    "clear photo of the whole photo page",
                )
            ],
            {"source": reading.source},
        )
    findings: list[Finding] = []
    expiry = mrz_date(mrz.expiry_date, as_of=as_of, birth=False)
    birth = mrz_date(mrz.birth_date, as_of=as_of, birth=True)
    facts: dict[str, Any] = {
        "source": reading.source,
        "mrz_format": mrz.format,
        "document_type": mrz.document_type,
        "issuer": mrz.issuer,
        "name": mrz.full_name,
        "nationality": mrz.nationality,
        "expires_on": expiry.isoformat() if expiry else None,
        "date_of_birth": birth.isoformat() if birth else None,
        "ocr_confidence": round(mrz.confidence, 3),
    }
    sure = mrz.confidence >= MRZ_SURE
    broken = mrz.bad_check_digits or [
        c for c in mrz.failed_checks if c in ("expiry date", "date of birth")
    ]
    exact = mrz.confidence >= 1.0  # a PDF's text layer: what it says is what it is
    look_alike = (
        mrz.number_look_alike is not None
        and not exact
        and set(broken) <= {"document number check digit", "overall check digit"}
    )
    # A changed digit breaks its field's check digit and, always, the overall one (which
    # covers the field and its digit with weights prime to 10); a changed overall digit
    # breaks only that one. Anything else — several fields, a field without the overall
    # digit, malformed fields beside them — is what a misread looks like (a dropped or
    # doubled character shifting the line), not a forgery.
    fields_broken = [c for c in broken if c != "overall check digit"]
    malformed = [c for c in mrz.failed_checks if c not in CHECK_DIGITS]
    one_change = "overall check digit" in broken and len(fields_broken) <= 1
    shifted = not exact and (not one_change or bool(malformed))
    if broken:
        what = ", ".join(broken)
        if sure and shifted:
            findings.append(
                Finding(
                    "mrz_unclear",
                    Verdict.NEEDS_REVIEW,
                    f"MRZ check failed: {what}"
                    + (f"; malformed: {', '.join(malformed)}" if malformed else "")
                    + ": not the trace of one changed digit, more like a misread line",
                    f"we could not read the machine-readable lines of the {mrz.noun} clearly; "
                    "our team will check it, or you can upload a sharper photo",
                )
            )
        elif sure and look_alike:
            findings.append(
                Finding(
                    "mrz_unclear",
                    Verdict.NEEDS_REVIEW,
                    f"MRZ check failed: {what}; reading the number's {mrz.number_look_alike} "
                    "would pass: OCR look-alike or a changed number, a person decides",
                    f"we could not read the document number on the {mrz.noun} with certainty; "
                    "our team will check it, or you can upload a sharper photo",
                )
            )
        elif sure:
            findings.append(
                Finding(
                    "check_digit",
                    Verdict.REJECTED,
                    f"MRZ check failed: {what} (read with OCR score {mrz.confidence:.2f})",
                    f"the machine-readable lines of the {mrz.noun} do not check out (a number "
                    "in them has been changed or misprinted); please upload a photo of your "
                    "original, valid passport or ID card",
                )
            )
        else:
            findings.append(
                Finding(
                    "mrz_unclear",
                    Verdict.NEEDS_REVIEW,
                    f"MRZ check failed: {what}, but the OCR was unsure "
                    f"(score {mrz.confidence:.2f}): could be the reading",
                    f"we could not read the machine-readable lines of the {mrz.noun} clearly; "
                    "our team will check it, or you can upload a sharper photo",
                )
            )
    if mrz.noun == "visa":
        findings.append(
            Finding(
                "wrong_document",
                Verdict.REJECTED,
                f"MRZ document type {mrz.document_type!r} is a visa",
                "this is a visa, not a passport or ID card; please upload your passport or "
                "national ID card",
            )
        )
    elif mrz.noun == "travel document":
        findings.append(
            Finding(
                "document_type",
                Verdict.NEEDS_REVIEW,
                f"MRZ document type {mrz.document_type!r} is not a passport or ID card",
                "we could not tell whether this is a passport or an ID card; our team will "
                "check it",
            )
        )
    if expiry is not None and expiry <= as_of:
        findings.append(
            Finding(
                "expired",
                Verdict.REJECTED,
                f"expired on {expiry.isoformat()} (MRZ), checked as of {as_of.isoformat()}",
                f"the {mrz.noun} expired on {spoken(expiry)}; please upload one that is "
                "still valid",
            )
        )
    if typed_expiry is not None and expiry is not None and typed_expiry != expiry:
        findings.append(
            Finding(
                "typed_expiry_differs",
                Verdict.MACHINE_VERIFIED,
                f"the uploader typed expiry {typed_expiry.isoformat()}; the MRZ says "
                f"{expiry.isoformat()} (the MRZ is used)",
                "",
            )
        )

    match = same_person(client.name, mrz.full_name)
    facts["name_score"] = round(match.score, 1)
    if not match.same:
        findings.append(
            Finding(
                "name_mismatch",
                Verdict.NEEDS_REVIEW,
                f"name on the document {mrz.full_name!r} vs application {client.name!r}: "
                f"score {match.score:.0f} (needs 85)",
                "the name on the document does not match the application",
            )
        )
    if client.date_of_birth is not None and birth is not None and birth != client.date_of_birth:
        findings.append(
            Finding(
                "birth_date_mismatch",
                Verdict.NEEDS_REVIEW,
                f"date of birth on the document {birth.isoformat()} vs application "
                f"{client.date_of_birth.isoformat()}",
                "the date of birth on the document does not match the application",
            )
        )
    nationality = nationality_iso2(mrz.nationality)
    if client.nationality and nationality and nationality != client.nationality.upper():
        findings.append(
            Finding(
                "nationality_mismatch",
                Verdict.NEEDS_REVIEW,
                f"nationality on the document {mrz.nationality} ({nationality}) vs "
                f"application {client.nationality}",
                "the nationality on the document does not match the application",
            )
        )
    return _judged(findings, facts)


def judge_dated_document(
    reading: Reading,
    client: ClientFacts,
    *,
    as_of: date,
    max_age_days: int | None,
    typed_issued: date | None = None,
    noun: str = "document",
) -> Judgement:
    """A proof of address (or a company document): it must name the client and, when the
    checklist sets a freshness window, carry a date inside it."""
    if not reading.readable:
        return _judged([unreadable(reading)], {})
    if sum(len(line.text) for line in reading.lines) < 10:
        return _judged(
            [
                Finding(
                    "no_text",
                    Verdict.NEEDS_REVIEW,
                    f"almost no text read ({reading.source})",
                    _UNREADABLE_CLIENT["no_text"],
                )
            ],
            {"source": reading.source},
        )
    findings: list[Finding] = []
    facts: dict[str, Any] = {"source": reading.source}
    match = best_match(
        client.name,
        addr.name_candidates(reading.lines),
        entity_type="person" if client.entity_type == "person" else "entity",
    )
    facts["name_score"] = round(match.score, 1)
    facts["name"] = match.matched
    if not match.same:
        findings.append(
            Finding(
                "name_not_found",
                Verdict.NEEDS_REVIEW,
                f"the application's name {client.name!r} is not on the {noun} "
                f"(best line {match.matched!r}, score {match.score:.0f}, needs 85)",
                f"we could not find the name on the application ({client.name}) on the "
                f"{noun}; it must be addressed to you",
            )
        )
    month_first = (client.country or "").upper() in addr.MONTH_FIRST_COUNTRIES
    dated = addr.document_date(reading.lines, as_of, month_first=month_first)
    facts["issued_on"] = dated.isoformat() if dated else None
    if max_age_days is not None:
        if dated is None:
            findings.append(
                Finding(
                    "no_date",
                    Verdict.NEEDS_REVIEW,
                    f"no date on or before {as_of.isoformat()} found on the {noun}",
                    f"we could not find a date on the {noun}; it must be dated within the "
                    f"last {max_age_days} days",
                )
            )
        elif (as_of - dated).days > max_age_days:
            findings.append(
                Finding(
                    "too_old",
                    Verdict.REJECTED,
                    f"dated {dated.isoformat()}: {(as_of - dated).days} days before "
                    f"{as_of.isoformat()}, more than {max_age_days}",
                    f"the {noun} is dated {spoken(dated)}; it must be from the last "
                    f"{max_age_days} days, so please upload a more recent one",
                )
            )
    if typed_issued is not None and dated is not None and typed_issued != dated:
        findings.append(
            Finding(
                "typed_date_differs",
                Verdict.MACHINE_VERIFIED,
                f"the uploader typed issue date {typed_issued.isoformat()}; the {noun} says "
                f"{dated.isoformat()} (the document's date is used)",
                "",
            )
        )
    return _judged(findings, facts)
