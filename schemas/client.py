"""The client profile captured when a case starts."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas import identifiers
from schemas.enums import Channel, ClientTier, ClientType
from schemas.text import Key, Line

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

CountryCode = Annotated[
    str, StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$", to_upper=True)
]


class ContactPreferences(BaseModel):
    """How the client wants to hear from us, in order of preference."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.EMAIL, Channel.IN_APP], min_length=1, max_length=10
    )
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    callback_stages: list[Key] = Field(
        default_factory=list,
        max_length=20,
        description="Stages at which a premium client wants a phone callback.",
    )

    @field_validator("channels")
    @classmethod
    def _no_duplicate_channels(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("each channel may appear once")
        return value


class ClientProfile(BaseModel):
    """Who is being onboarded. PII lives here and in Postgres, never in search attributes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Line = Field(description="No control characters, at most 200 characters")
    email: EmailStr
    phone: str | None = Field(default=None, max_length=16, description="E.164, e.g. +447700900123")
    client_type: ClientType
    tier: ClientTier = ClientTier.STANDARD
    country: CountryCode = Field(
        description="ISO 3166-1 alpha-2 country of residence or incorporation"
    )
    date_of_birth: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD, individuals"
    )
    regulatory_requirements: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        max_length=20,
        default_factory=list,
        description="Regimes that apply, e.g. 'fatca', 'mifid_ii'. Each adds its checks.",
    )
    contact_preferences: ContactPreferences = Field(default_factory=ContactPreferences)
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$",
        description="IANA zone, e.g. Europe/Berlin: dates in messages to the client are "
        "given in it (default UTC)",
    )
    # identifiers, checked at intake (NewClientProfile); documents are matched against them
    nationality: CountryCode | None = Field(
        default=None,
        description="ISO 3166-1 alpha-2 nationality (individuals; checked "
        "against the passport or ID card)",
    )
    lei: str | None = Field(default=None, max_length=40, description="Legal Entity Identifier")
    company_number: str | None = Field(
        default=None, max_length=40, description="Company registration number"
    )
    vat_number: str | None = Field(default=None, max_length=40, description="VAT number")
    payout_iban: str | None = Field(
        default=None, max_length=50, description="IBAN of the payout account"
    )

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError("phone must be E.164, like +447700900123")
        return value

    @field_validator("regulatory_requirements")
    @classmethod
    def _normalise_requirements(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value if v.strip()]
        for item in cleaned:
            if not re.fullmatch(r"[a-z0-9_\-]{1,40}", item):
                raise ValueError("requirements are short codes like 'fatca' or 'mifid_ii'")
        return sorted(set(cleaned))


EARLIEST_BIRTH = date(1900, 1, 1)


def check_birth_date(value: str | None, *, today: date | None = None) -> str | None:
    """A real calendar day (not 2023-02-30), not in the future and not before 1900."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as e:
        raise ValueError("date_of_birth must be a real date, YYYY-MM-DD") from e
    if day > (today or date.today()):
        raise ValueError("date_of_birth must not be in the future")
    if day < EARLIEST_BIRTH:
        raise ValueError("date_of_birth must not be before 1900-01-01")
    return value


class NewClientProfile(ClientProfile):
    """A client profile as the API takes it (``POST /cases``): the date of birth must be a real
    past date. Stored profiles and workflow histories keep the lenient ``ClientProfile``, so a
    case opened before this check still loads (screening ignores a date it cannot read)."""

    @field_validator("date_of_birth")
    @classmethod
    def _real_birth_date(cls, value: str | None) -> str | None:
        return check_birth_date(value)

    @model_validator(mode="before")
    @classmethod
    def _phone_as_e164(cls, data: Any) -> Any:
        """A phone number as people write it (``07700 900123`` in GB, ``+44 7700 900123``)
        is stored as E.164. One that cannot be parsed is left as given, for the field's own
        check to name."""
        if isinstance(data, dict) and isinstance(data.get("phone"), str):
            country = data.get("country")
            e164 = identifiers.phone_e164(
                data["phone"], country if isinstance(country, str) else None
            )
            if e164 is not None:
                data = {**data, "phone": e164}
        return data

    @field_validator("phone")
    @classmethod
    def _possible_phone(cls, value: str | None) -> str | None:
        return None if value is None else identifiers.check_phone(value)

    @field_validator("lei")
    @classmethod
    def _valid_lei(cls, value: str | None) -> str | None:
        return None if value is None else identifiers.check_lei(value)

    @field_validator("company_number")
    @classmethod
    def _valid_company_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return identifiers.check_company_number(value, info.data.get("country"))

    @field_validator("vat_number")
    @classmethod
    def _valid_vat_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return identifiers.check_vat(value, info.data.get("country"))

    @field_validator("payout_iban")
    @classmethod
    def _valid_iban(cls, value: str | None) -> str | None:
        return None if value is None else identifiers.check_iban(value)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        """Checked at the edge only: workflow code never reads the tz database."""
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value
