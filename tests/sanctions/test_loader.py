"""Loader tests against hand-written fixture files in the published formats."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from integrations.sanctions import load_ofac_sdn, load_opensanctions, parse_dob
from integrations.sanctions.loader import DateOfBirth

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sanctions"


@pytest.fixture(scope="module")
def ofac():
    entries = load_ofac_sdn(FIXTURES / "sdn.csv", FIXTURES / "alt.csv")
    return {e.entry_id: e for e in entries}


def test_ofac_skips_trailer_and_malformed_rows(ofac):
    assert len(ofac) == 13
    assert all(eid.startswith("ofac-sdn:") for eid in ofac)
    assert "ofac-sdn:112" not in ofac


def test_ofac_individual_fields(ofac):
    putin = ofac["ofac-sdn:100"]
    assert putin.entity_type == "person"
    assert putin.name == "PUTIN, Vladimir Vladimirovich"
    assert putin.aliases == ("PUTIN, Vladimir",)
    assert putin.weak_aliases == ("VOVA",)
    assert putin.dates_of_birth == (DateOfBirth(1952, 1952, dt.date(1952, 10, 7)),)
    assert putin.countries == ("RU",)
    assert putin.programs == ("RUSSIA-EO14024",)


def test_ofac_cp1252_names_and_multi_program(ofac):
    assert ofac["ofac-sdn:102"].name == "MÜLLER SCHMIDT, Jürgen Karl"
    assert ofac["ofac-sdn:105"].programs == ("SDGT", "SYRIA")
    assert len(ofac["ofac-sdn:105"].dates_of_birth) == 2


def test_ofac_entity_vessel_aircraft_types(ofac):
    assert ofac["ofac-sdn:36"].entity_type == "entity"
    assert ofac["ofac-sdn:36"].aliases == ("AERO-CARIBBEAN",)
    assert ofac["ofac-sdn:110"].entity_type == "vessel"
    assert ofac["ofac-sdn:110"].countries == ("IR",)  # from the vessel flag column
    assert ofac["ofac-sdn:111"].entity_type == "aircraft"


def test_ofac_country_from_place_of_birth_and_citizen(ofac):
    assert ofac["ofac-sdn:106"].countries == ("NG",)
    assert ofac["ofac-sdn:103"].countries == ("CO",)
    assert ofac["ofac-sdn:104"].countries == ()


def test_ofac_without_alt_file():
    entries = load_ofac_sdn(FIXTURES / "sdn.csv")
    assert all(not e.aliases for e in entries)


def test_opensanctions_rows():
    entries = {e.entry_id: e for e in load_opensanctions(FIXTURES / "targets.simple.csv")}
    assert set(entries) == {
        "opensanctions:Q296771",
        "opensanctions:Q900001",
        "opensanctions:Q900002",
    }
    hariri = entries["opensanctions:Q296771"]
    assert "Харири, Саад" in hariri.aliases
    assert hariri.countries == ("FR", "LB", "SA")
    assert hariri.dates_of_birth[0].exact == dt.date(1970, 4, 18)
    assert entries["opensanctions:Q900002"].entity_type == "entity"


def test_opensanctions_rejects_other_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="OpenSanctions"):
        load_opensanctions(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 Jan 1960", DateOfBirth(1960, 1960, dt.date(1960, 1, 12))),
        ("1960", DateOfBirth(1960, 1960)),
        ("Jan 1957", DateOfBirth(1957, 1957)),
        ("circa 1960", DateOfBirth(1958, 1962)),
        ("1984 to 1986", DateOfBirth(1984, 1986)),
        ("01 Jan 1961 to 31 Dec 1963", DateOfBirth(1961, 1963)),
        ("1948-01-01", DateOfBirth(1948, 1948, dt.date(1948, 1, 1))),
        ("1970-04", DateOfBirth(1970, 1970)),
        ("31 Feb 1970", DateOfBirth(1970, 1970)),
        ("unknown", None),
        ("", None),
    ],
)
def test_parse_dob(text, expected):
    assert parse_dob(text) == expected
