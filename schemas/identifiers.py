"""Checks of the identifiers a client gives at intake: phone, LEI, company and VAT numbers,
the payout IBAN. Each returns the identifier in its stored form or raises ``ValueError`` with
a message fit for a 422 field error.

Why libraries and not patterns: every one of these numbers carries a checksum or a national
format (an LEI's ISO 7064 check digits, a German VAT number's, an IBAN's mod-97, a phone
number's length per country). python-stdnum, schwifty and phonenumbers know them; a regex
would let typos through. They are imported on first use only: the workflow code that imports
``schemas`` never loads them.

Phone numbers are *possible* numbers (right length for the country code), not necessarily
*assigned* ones: number plans change faster than any library's metadata, and refusing a
real client's new number at intake is worse than letting a reserved one through.
"""

from __future__ import annotations

import importlib
import re

_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./\-]{4,30}$")
_GB_COMPANY = re.compile(r"^(?:\d{8}|[A-Z]{2}\d{6})$")
_PLAIN_NUMBER = re.compile(r"^[A-Z0-9]{2,20}$")

COMPANY_NUMBER_MODULES = {
    "AT": "at.businessid",
    "BE": "be.vat",  # the enterprise number is the VAT number without BE
    "CH": "ch.uid",
    "DK": "dk.cvr",
    "EE": "ee.registrikood",
    "ES": "es.cif",
    "FI": "fi.ytunnus",
    "FR": "fr.siren",
    "IT": "it.iva",
    "NO": "no.orgnr",
    "PL": "pl.regon",
    "SE": "se.orgnr",
    "US": "us.ein",
}
"""Countries whose company registration numbers python-stdnum validates; GB is checked
against the Companies House format; elsewhere only the characters are checked (Germany too:
stdnum's Handelsregisternummer wants the court's name, which people do not type)."""


def phone_e164(value: str, country: str | None) -> str | None:
    """``value`` as E.164 if phonenumbers can parse it (national numbers in ``country``'s
    format), else None (the caller reports the error)."""
    text = value.strip()
    if not _PHONE_CHARS.match(text):
        return None  # letters ("0770 SECRET") are not dialled as keypad letters here
    import phonenumbers

    region = (country or "").strip().upper() or None
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_phone(value: str) -> str:
    """An E.164 number that is a possible number for its country code."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("phone is not a phone number (use E.164, like +447700900123)") from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:  # local-only lengths are not
        region = phonenumbers.region_code_for_number(parsed) or f"+{parsed.country_code}"
        raise ValueError(f"phone has the wrong number of digits for {region}")
    return value


def _stdnum(module: str) -> object | None:
    try:
        return importlib.import_module(f"stdnum.{module}")
    except ImportError:
        return None


def _validated(module: object, value: str, what: str) -> str:
    from stdnum.exceptions import ValidationError

    try:
        return str(module.validate(value))  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise ValueError(f"{what} is not valid: {exc}") from None


def check_lei(value: str) -> str:
    """A Legal Entity Identifier (ISO 17442: 20 characters, ISO 7064 mod 97-10 check)."""
    from stdnum import lei

    return _validated(lei, value, "lei")


def check_vat(value: str, country: str | None) -> str:
    """A VAT number with its country prefix (the client's country's when none is given)."""
    from stdnum import vatin
    from stdnum.exceptions import InvalidComponent

    text = re.sub(r"[\s.\-]", "", value).upper()
    if not text[:2].isalpha() and country:
        prefix = "EL" if country.upper() == "GR" else country.upper()
        text = prefix + text
    try:
        return _validated(vatin, text, "vat_number")
    except InvalidComponent:
        raise ValueError(f"vat_number: no VAT number format is known for {text[:2]}") from None


def check_company_number(value: str, country: str | None) -> str:
    """A company registration number, checked by the country's rules where known."""
    text = re.sub(r"[\s.\-/]", "", value).upper()
    cc = (country or "").upper()
    if cc == "GB":
        if text.isdigit() and len(text) < 8:
            text = text.zfill(8)
        if not _GB_COMPANY.match(text):
            raise ValueError(
                "company_number is not a Companies House number (8 digits, or 2 letters and "
                "6 digits, like SC123456)"
            )
        return text
    module = _stdnum(COMPANY_NUMBER_MODULES[cc]) if cc in COMPANY_NUMBER_MODULES else None
    if module is not None:
        return _validated(module, value, "company_number")
    if not _PLAIN_NUMBER.match(text):
        raise ValueError("company_number must be 2 to 20 letters and digits")
    return text


def check_iban(value: str) -> str:
    """An IBAN (country format and mod-97 check), in its compact form."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"payout_iban is not a valid IBAN: {exc}") from None
