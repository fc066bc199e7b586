"""Sanctions / PEP screening: list loaders, an indexed fuzzy matcher and a reloading wrapper."""

from integrations.sanctions.loader import (
    DateOfBirth,
    EntityType,
    ListEntry,
    load_ofac_sdn,
    load_opensanctions,
    parse_dob,
)
from integrations.sanctions.matcher import (
    DEFAULT_THRESHOLD,
    SanctionsScreener,
    ScreeningHit,
    ScreeningResult,
    ScreeningSubject,
)
from integrations.sanctions.normalize import normalize_name
from integrations.sanctions.reloading import ReloadingScreener

__all__ = [
    "DEFAULT_THRESHOLD",
    "DateOfBirth",
    "EntityType",
    "ListEntry",
    "ReloadingScreener",
    "SanctionsScreener",
    "ScreeningHit",
    "ScreeningResult",
    "ScreeningSubject",
    "load_ofac_sdn",
    "load_opensanctions",
    "normalize_name",
    "parse_dob",
]
