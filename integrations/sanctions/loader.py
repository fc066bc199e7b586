"""Parsers for published sanctions/PEP list files into uniform list entries.

Supported formats (any newer file of the same shape loads the same way):

* OFAC SDN ``sdn.csv`` (+ optional ``alt.csv`` aliases): headerless CSV,
  ``-0-`` for empty, cp1252 text, a trailing lone ``\\x1a`` line.
* OpenSanctions "targets.simple.csv": headered UTF-8 CSV, ``;``-separated
  aliases / countries / birth dates.

Loaders never raise on a single bad row: they log it and skip it, because one
malformed line in a vendor file must not take screening offline.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from integrations.sanctions.countries import country_to_iso2, place_to_iso2

logger = logging.getLogger(__name__)

EntityType = Literal["person", "entity", "vessel", "aircraft"]

OFAC_LIST = "ofac-sdn"
OPENSANCTIONS_LIST = "opensanctions"

_EMPTY = "-0-"
_SUB = "\x1a"

# Some SDN remarks are long; the csv module's default field limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True, slots=True)
class DateOfBirth:
    """A possibly-approximate birth date: an inclusive year range plus the exact day if known."""

    year_from: int
    year_to: int
    exact: dt.date | None = None

    def describe(self) -> str:
        """Short human text for explanations."""
        if self.exact:
            return self.exact.isoformat()
        if self.year_from == self.year_to:
            return str(self.year_from)
        return f"{self.year_from}-{self.year_to}"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One listed party with every name it is known by."""

    entry_id: str
    list_name: str
    name: str
    entity_type: EntityType
    aliases: tuple[str, ...] = ()
    weak_aliases: tuple[str, ...] = ()
    dates_of_birth: tuple[DateOfBirth, ...] = ()
    countries: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    source_ref: str = field(default="", compare=False)


_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_DAY_MON_YEAR = re.compile(r"^(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{4})$")
_MON_YEAR = re.compile(r"^([A-Za-z]{3})[a-z]*\.?\s+(\d{4})$")
_YEAR = re.compile(r"^(\d{4})$")
_ISO = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_CIRCA = re.compile(r"^(?:circa|ca\.?|approx(?:imately)?\.?|about|c\.)\s*", re.IGNORECASE)
_RANGE = re.compile(r"\s+(?:to|-|\u2013)\s+", re.IGNORECASE)
_CIRCA_SPREAD = 2


def _parse_single_date(text: str) -> DateOfBirth | None:
    """Parse one point-in-time DOB text (no ranges)."""
    text = text.strip().rstrip(".").strip()
    if not text:
        return None
    circa = bool(_CIRCA.match(text))
    text = _CIRCA.sub("", text).strip()
    result: DateOfBirth | None = None
    if m := _DAY_MON_YEAR.match(text):
        month = _MONTHS.get(m.group(2).casefold())
        year = int(m.group(3))
        exact: dt.date | None = None
        if month:
            try:
                exact = dt.date(year, month, int(m.group(1)))
            except ValueError:
                exact = None
        result = DateOfBirth(year, year, exact)
    elif (m := _MON_YEAR.match(text)) or (m := _YEAR.match(text)):
        year = int(m.groups()[-1])
        result = DateOfBirth(year, year)
    elif m := _ISO.match(text):
        year = int(m.group(1))
        exact = None
        if m.group(2) and m.group(3):
            try:
                exact = dt.date(year, int(m.group(2)), int(m.group(3)))
            except ValueError:
                exact = None
        result = DateOfBirth(year, year, exact)
    if result is None:
        return None
    if not 1850 <= result.year_from <= 2100:
        return None
    if circa:
        return DateOfBirth(result.year_from - _CIRCA_SPREAD, result.year_to + _CIRCA_SPREAD)
    return result


def parse_dob(text: str) -> DateOfBirth | None:
    """Parse lenient DOB text: ``12 Jan 1960``, ``Jan 1960``, ``1960``, ``circa 1960``,
    ``1958 to 1960``, ``01 Jan 1961 to 31 Dec 1963`` or ISO ``1960-01-12``/``1960``.

    Returns ``None`` for text that carries no recognisable year.
    """
    text = text.strip().rstrip(".").strip()
    if not text:
        return None
    parts = _RANGE.split(text, maxsplit=1) if not _ISO.fullmatch(text) else [text]
    if len(parts) == 2:
        lo, hi = _parse_single_date(parts[0]), _parse_single_date(parts[1])
        if lo and hi:
            return DateOfBirth(min(lo.year_from, hi.year_from), max(lo.year_to, hi.year_to))
        return lo or hi
    return _parse_single_date(text)


def _clean(value: str | None) -> str:
    """OFAC uses ``-0-`` (often padded) for empty fields."""
    if value is None:
        return ""
    value = value.strip()
    return "" if value == _EMPTY else value


def _is_trailer(row: list[str]) -> bool:
    return all(not cell.strip().strip(_SUB).strip() for cell in row)


_AKA_IN_REMARKS = re.compile(r"\b[afn]\.k\.a\.?\s*'(.+?)'(?=\s*[;.,)]|\s*$)", re.IGNORECASE)
_PROGRAM_SPLIT = re.compile(r"\]\s*\[")


def _iter_csv(path: Path, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line_number, row), decoding leniently so odd bytes cannot abort a load."""
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, skipinitialspace=False)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                logger.warning("%s:%d: unparsable CSV row skipped: %s", path, reader.line_num, exc)
                continue
            yield reader.line_num, row


def _parse_remarks(remarks: str) -> tuple[list[DateOfBirth], list[str], list[str]]:
    """Extract DOBs, ISO2 countries and weak a.k.a. names from SDN remarks text."""
    dobs: list[DateOfBirth] = []
    countries: list[str] = []
    for raw in remarks.split(";"):
        part = raw.strip()
        if part.lower().startswith("alt. "):
            part = part[5:].strip()
        lower = part.lower()
        if lower.startswith("dob "):
            dob = parse_dob(part[4:])
            if dob:
                dobs.append(dob)
            else:
                logger.debug("unparsed DOB text %r", part)
        elif lower.startswith(("nationality of registration ", "nationality ", "citizen ")):
            value = part.split(" ", 1)[1]
            if lower.startswith("nationality of registration "):
                value = part[len("nationality of registration ") :]
            code = country_to_iso2(value)
            if code:
                countries.append(code)
        elif lower.startswith("pob "):
            code = place_to_iso2(part[4:])
            if code:
                countries.append(code)
    weak = [m.group(1).strip() for m in _AKA_IN_REMARKS.finditer(remarks) if m.group(1).strip()]
    return dobs, countries, weak


def _dedupe(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return tuple(seen)


_OFAC_TYPES: dict[str, EntityType] = {
    "individual": "person",
    "vessel": "vessel",
    "aircraft": "aircraft",
    "": "entity",
}


def load_ofac_sdn(sdn_path: Path, alt_path: Path | None = None) -> list[ListEntry]:
    """Load the OFAC SDN list (and its alternate-names file when given)."""
    entries: dict[str, ListEntry] = {}
    skipped = 0
    for line_no, row in _iter_csv(sdn_path, "cp1252"):
        if not row or _is_trailer(row):
            continue
        if len(row) < 3:
            logger.warning("%s:%d: SDN row has %d columns, skipped", sdn_path, line_no, len(row))
            skipped += 1
            continue
        ent_num = row[0].strip().lstrip(_SUB).strip()
        name = _clean(row[1])
        if not ent_num.isdigit() or not name:
            logger.warning("%s:%d: SDN row without ent_num/name, skipped", sdn_path, line_no)
            skipped += 1
            continue
        cells = [_clean(c) for c in row] + [""] * max(0, 12 - len(row))
        sdn_type = cells[2].casefold()
        entity_type = _OFAC_TYPES.get(sdn_type, "entity")
        programs = tuple(p.strip(" []") for p in _PROGRAM_SPLIT.split(cells[3]) if p.strip(" []"))
        dobs, countries, weak = _parse_remarks(cells[11])
        if entity_type == "vessel" and cells[9]:
            flag = country_to_iso2(cells[9])
            if flag:
                countries.append(flag)
        entry_id = f"{OFAC_LIST}:{ent_num}"
        entries[entry_id] = ListEntry(
            entry_id=entry_id,
            list_name=OFAC_LIST,
            name=name,
            entity_type=entity_type,
            weak_aliases=_dedupe([w for w in weak if w != name]),
            dates_of_birth=tuple(dict.fromkeys(dobs)),
            countries=_dedupe(countries),
            programs=programs,
            source_ref=f"{sdn_path.name}:{line_no}",
        )
    if alt_path is not None:
        _merge_ofac_alt(entries, alt_path)
    logger.info(
        "loaded %d OFAC SDN entries from %s (%d rows skipped)", len(entries), sdn_path, skipped
    )
    return list(entries.values())


def _merge_ofac_alt(entries: dict[str, ListEntry], alt_path: Path) -> None:
    aliases: dict[str, list[str]] = {}
    for line_no, row in _iter_csv(alt_path, "cp1252"):
        if not row or _is_trailer(row):
            continue
        if len(row) < 4 or not row[0].strip().isdigit():
            logger.warning("%s:%d: malformed alias row skipped", alt_path, line_no)
            continue
        alt_name = _clean(row[3])
        entry_id = f"{OFAC_LIST}:{row[0].strip()}"
        if not alt_name:
            continue
        if entry_id not in entries:
            logger.debug("%s:%d: alias for unknown entry %s", alt_path, line_no, entry_id)
            continue
        aliases.setdefault(entry_id, []).append(alt_name)
    for entry_id, names in aliases.items():
        entry = entries[entry_id]
        merged = _dedupe([n for n in names if n != entry.name])
        entries[entry_id] = replace(entry, aliases=merged)


_OS_TYPES: dict[str, EntityType] = {
    "person": "person",
    "vessel": "vessel",
    "airplane": "aircraft",
    "aircraft": "aircraft",
}


def load_opensanctions(path: Path) -> list[ListEntry]:
    """Load an OpenSanctions ``targets.simple.csv`` export."""
    entries: list[ListEntry] = []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        if not {"id", "name"} <= fields:
            raise ValueError(f"{path}: not an OpenSanctions simple CSV (need id and name columns)")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                logger.warning("%s:%d: unparsable CSV row skipped: %s", path, reader.line_num, exc)
                continue
            ident = (row.get("id") or "").strip()
            name = (row.get("name") or "").strip()
            if not ident or not name:
                logger.warning("%s:%d: row without id/name skipped", path, reader.line_num)
                continue
            schema = (row.get("schema") or "").strip().casefold()
            dobs = [d for d in (parse_dob(x) for x in _split(row.get("birth_date"))) if d]
            countries = [c.upper() for c in _split(row.get("countries")) if len(c) == 2]
            programs = _split(row.get("dataset")) or []
            entries.append(
                ListEntry(
                    entry_id=f"{OPENSANCTIONS_LIST}:{ident}",
                    list_name=OPENSANCTIONS_LIST,
                    name=name,
                    entity_type=_OS_TYPES.get(schema, "entity"),
                    aliases=_dedupe([a for a in _split(row.get("aliases")) if a != name]),
                    dates_of_birth=tuple(dict.fromkeys(dobs)),
                    countries=_dedupe(countries),
                    programs=tuple(programs),
                    source_ref=f"{path.name}:{reader.line_num}",
                )
            )
    logger.info("loaded %d OpenSanctions entries from %s", len(entries), path)
    return entries


def _split(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.split(";") if part.strip()]


ENTRY_HASH_LENGTH = 32  # hex characters of an entry's content hash (128 bits)


def entry_content_hash(entry: ListEntry) -> str:
    """What makes an entry the same designation, hashed; order and file position do not count.

    Monitoring keeps it with every alert, onboarding with every hit: an entry that changed
    since (a new alias, a corrected date of birth, another programme) hashes differently.
    """
    canonical = {
        "list": entry.list_name,
        "entry_id": entry.entry_id,
        "type": entry.entity_type,
        "name": " ".join(entry.name.split()),
        "aliases": sorted({" ".join(a.split()) for a in entry.aliases}),
        "weak_aliases": sorted({" ".join(a.split()) for a in entry.weak_aliases}),
        "dates_of_birth": sorted(
            {
                f"{d.year_from}-{d.year_to}:{d.exact.isoformat() if d.exact else ''}"
                for d in entry.dates_of_birth
            }
        ),
        "countries": sorted(set(entry.countries)),
        "programs": sorted(set(entry.programs)),
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:ENTRY_HASH_LENGTH]


def file_digest(path: Path) -> str:
    """Short SHA-256 of a file's bytes, used to version what was screened against."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
