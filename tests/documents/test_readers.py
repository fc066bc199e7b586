"""The document readers and judges on their own (no database, no worker): the MRZ repair
and checks, dates and names on a bill, PDF caps, the plain words, and the intake checks of
phone numbers and identifiers."""

from __future__ import annotations

import random
from datetime import date

import pytest

from bench import document_data as dd
from integrations.documents.address import document_date, find_dates
from integrations.documents.common import ReadLimits, TextLine, Unreadable
from integrations.documents.mrz import check_digit, clean, find_mrz
from integrations.documents.names import same_person
from integrations.documents.pdf_text import read_pdf
from integrations.documents.reader import DocumentReader, Reading
from integrations.documents.verdicts import (
    ClientFacts,
    Verdict,
    judge_dated_document,
    judge_identity,
    mrz_date,
    nationality_iso2,
    spoken,
)
from schemas.client import NewClientProfile
from tests.documents import real_documents as docs

AS_OF = date(2026, 12, 1)
ADA = ClientFacts(name="Ada Lovelace", country="GB")


def lines(*texts: str, confidence: float = 0.95) -> list[TextLine]:
    return [TextLine(t, confidence) for t in texts]


def test_a_passport_mrz_is_read_through_ocr_damage():
    good = dd.td3(docs.ADA, date(2031, 1, 31))
    # what OCR does: lower case, a dropped filler, O for 0 in a date, a guillemet for <<
    damaged = [
        good[0].lower().replace("<<<<", "<<<", 1),
        good[1].replace("<<", "\u00ab", 1)[:13] + good[1][13:].replace("0", "O", 1),
    ]
    read = find_mrz(lines("PASSPORT", *damaged, "noise"))
    assert read is not None and read.format == "TD3"
    assert (read.surname, read.given_names, read.nationality) == ("LOVELACE", "ADA", "GBR")
    assert read.failed_checks == ()
    assert read.expiry_date == "310131" and read.noun == "passport"


def test_id_cards_td1_and_td2_are_found():
    td1 = find_mrz(lines(*dd.td1(docs.ADA, date(2031, 1, 31))))
    assert td1 is not None and td1.format == "TD1" and td1.noun == "ID card"
    from mrz.generator.td2 import TD2CodeGenerator

    td2_lines = str(
        TD2CodeGenerator("I", "FRA", "DUPONT", "MARIE", "X4RTBPFW4", "FRA", "900101", "F", "300101")
    ).split("\n")
    td2 = find_mrz(lines(*td2_lines))
    assert td2 is not None and td2.format == "TD2" and td2.failed_checks == ()


def test_a_changed_check_digit_fails_and_says_which():
    tampered = dd.tamper_check_digit(dd.td3(docs.ADA, date(2031, 1, 31)), random.Random(1))
    read = find_mrz(lines(*tampered, confidence=1.0))
    assert read is not None and read.bad_check_digits
    judged = judge_identity(Reading("pdf_text", lines=[], mrz=read), ADA, as_of=AS_OF)
    assert judged.verdict == Verdict.REJECTED
    assert judged.blocking[0].code == "check_digit"
    assert "check digit" in judged.blocking[0].staff


def test_check_digits_follow_icao_9303():
    assert check_digit("L898902C3") == "6"  # the ICAO specimen
    assert check_digit("740812") == "2" and check_digit("120415") == "9"


def test_an_unsure_read_with_a_bad_digit_goes_to_a_person():
    tampered = dd.tamper_check_digit(dd.td3(docs.ADA, date(2031, 1, 31)), random.Random(1))
    read = find_mrz(lines(*tampered, confidence=0.6))
    judged = judge_identity(Reading("ocr", mrz=read), ADA, as_of=AS_OF)
    assert judged.verdict == Verdict.NEEDS_REVIEW and judged.blocking[0].code == "mrz_unclear"


def test_mrz_dates_get_their_century():
    assert mrz_date("850312", as_of=AS_OF, birth=True) == date(1985, 3, 12)
    assert mrz_date("100312", as_of=AS_OF, birth=True) == date(2010, 3, 12)
    assert mrz_date("310131", as_of=AS_OF, birth=False) == date(2031, 1, 31)
    assert mrz_date("991332", as_of=AS_OF, birth=False) is None
    # the century follows the workflow's today, not the machine's (a time-skipping test
    # server can be far ahead): an expiry is the nearest such day, a birth the latest past one
    later = date(2186, 11, 14)
    assert mrz_date("910101", as_of=later, birth=False) == date(2191, 1, 1)
    assert mrz_date("850312", as_of=later, birth=True) == date(2185, 3, 12)
    assert mrz_date("900101", as_of=later, birth=True) == date(2090, 1, 1)
    assert mrz_date("000229", as_of=AS_OF, birth=True) == date(2000, 2, 29)
    assert mrz_date("000229", as_of=date(2150, 1, 1), birth=False) == date(2000, 2, 29)


def test_nationality_codes():
    assert nationality_iso2("GBR") == "GB" and nationality_iso2("D<<") == "DE"
    assert nationality_iso2("GBD") == "GB" and nationality_iso2("FRA") == "FR"
    assert nationality_iso2("XXA") is None


def test_names_match_across_scripts_order_and_middle_names():
    assert same_person("Jürgen Müller", "JUERGEN MUELLER").same
    assert same_person("Ada Lovelace", "LOVELACE ADA").same
    assert same_person("Ada Lovelace", "ADA AUGUSTA LOVELACE").same
    assert same_person("Мухаммед Али", "MUKHAMMED ALI").same
    assert not same_person("Ada Lovelace", "GRACE HOPPER").same
    assert not same_person("Ada Lovelace", "ADA HOPPER").same


def test_dates_on_a_bill_in_the_forms_bills_use():
    text = "3 March 2026 | 2026-03-04 | March 5, 2026 | 06/03/2026 | 7th Mar 2026 | 8. März 2026"
    assert find_dates(text) == [date(2026, 3, d) for d in range(3, 9)]
    assert find_dates("03/06/2026", month_first=True) == [date(2026, 3, 6)]
    assert find_dates("Statement date:6 0ctober2026") == [date(2026, 10, 6)]  # OCR's spacing
    assert find_dates("2026-02-30 and 31/31/2026") == []


def test_the_statement_date_wins_over_due_and_customer_since_dates():
    bill = lines(
        "Customer since 12 May 2010",
        "Statement date: 3 March 2026",
        "Please pay by 20 March 2026",
    )
    assert document_date(bill, AS_OF, month_first=False) == date(2026, 3, 3)
    unlabelled = lines("Ada Lovelace", "12 May 2026", "Customer since 1 June 2026")
    assert document_date(unlabelled, AS_OF, month_first=False) == date(2026, 5, 12)


def test_a_stale_bill_is_rejected_in_plain_words_and_a_fresh_one_passes():
    stale = lines("Ms Ada Lovelace", "1 High Street", "Statement date: 3 March 2026")
    judged = judge_dated_document(Reading("ocr", lines=stale), ADA, as_of=AS_OF, max_age_days=90)
    assert judged.verdict == Verdict.REJECTED
    assert judged.blocking[0].client.startswith("the document is dated 3 March 2026")
    fresh = lines("Account holder: Ms Ada Lovelace", "Statement date: 3 November 2026")
    judged = judge_dated_document(Reading("ocr", lines=fresh), ADA, as_of=AS_OF, max_age_days=90)
    assert judged.verdict == Verdict.MACHINE_VERIFIED and judged.facts["issued_on"] == "2026-11-03"


def test_spoken_dates():
    assert spoken(date(2026, 3, 3)) == "3 March 2026"


def test_pdf_caps_and_broken_pdfs():
    with pytest.raises(Unreadable) as empty:
        read_pdf(dd.empty_pdf(), max_pages=5)
    assert empty.value.code == "no_pages"
    with pytest.raises(Unreadable) as broken:
        read_pdf(dd.damaged_pdf(), max_pages=5)
    assert broken.value.code in ("broken_file", "no_pages")
    content = read_pdf(docs.bill_pdf(), max_pages=5)
    assert content.pages == 1 and any("Ada Lovelace" in line.text for line in content.lines)
    reading = DocumentReader(ReadLimits(max_pages=1)).read_sync(
        docs.bill_pdf(), "application/pdf", False
    )
    assert reading.readable


def test_a_reading_survives_storage():
    reading = DocumentReader().read_sync(docs.passport_pdf(), "application/pdf", True)
    assert reading.mrz is not None and reading.source == "pdf_text"
    again = Reading.from_dict(reading.as_dict())
    assert again is not None and again.mrz == reading.mrz and again.lines == reading.lines
    assert Reading.from_dict({**reading.as_dict(), "version": 0}) is None  # read again


def test_clean_keeps_only_mrz_characters():
    assert clean("p<gbr lovelace«ada") == "P<GBRLOVELACE<<ADA"


BASE = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "client_type": "business",
    "country": "GB",
}


def test_intake_stores_phone_numbers_as_e164_and_identifiers_compact():
    profile = NewClientProfile(
        **BASE,
        phone="07700 900123",
        lei="5493001kjtiigc8y1r12",
        vat_number="980 7806 84",
        company_number="1234567",
        payout_iban="gb33 bukb 2020 1555 5555 55",
        nationality="gb",
    )
    assert profile.phone == "+447700900123"
    assert profile.lei == "5493001KJTIIGC8Y1R12"
    assert profile.vat_number == "GB980780684"
    assert profile.company_number == "01234567"
    assert profile.payout_iban == "GB33BUKB20201555555555"
    assert profile.nationality == "GB"
    assert NewClientProfile(**BASE, phone="+1 (415) 555-0123").phone == "+14155550123"
    assert NewClientProfile(
        **{**BASE, "country": "FR"}, company_number="732 829 320"
    ).company_number
