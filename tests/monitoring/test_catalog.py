"""What makes a list version and an entry "the same": hashes, kinds, atomic installs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from integrations.sanctions.catalog import (
    ListCatalog,
    ListFileError,
    ListFiles,
    candidate,
    entry_content_hash,
    files_version,
    install,
    load_lists,
    sniff_kind,
    source_files,
)
from integrations.sanctions.loader import DateOfBirth, ListEntry
from tests.conftest import SANCTIONS_FIXTURES
from tests.monitoring.lists import invented_people, sdn_row, write_sdn


def _entry(**changes: object) -> ListEntry:
    base = ListEntry(
        entry_id="ofac-sdn:1",
        list_name="ofac-sdn",
        name="DOE, John",
        entity_type="person",
        aliases=("Johnny Doe", "J. Doe"),
        dates_of_birth=(DateOfBirth(1970, 1970),),
        countries=("PT",),
        programs=("SDGT",),
        source_ref="sdn.csv:10",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_an_entry_keeps_its_hash_when_only_its_place_or_alias_order_changes() -> None:
    same = entry_content_hash(_entry())
    assert entry_content_hash(_entry(source_ref="sdn.csv:99")) == same
    assert entry_content_hash(_entry(aliases=("J. Doe", "Johnny Doe"))) == same
    assert entry_content_hash(_entry(name="DOE,  John ")) == same


@pytest.mark.parametrize(
    "change",
    [
        {"aliases": ("Johnny Doe", "J. Doe", "The Accountant")},
        {"dates_of_birth": (DateOfBirth(1971, 1971),)},
        {"countries": ("PT", "ES")},
        {"programs": ("SDGT", "RUSSIA-EO14024")},
        {"name": "DOE, Jonathan"},
        {"entity_type": "entity"},
    ],
)
def test_a_changed_designation_gets_a_new_hash(change: dict[str, object]) -> None:
    assert entry_content_hash(_entry(**change)) != entry_content_hash(_entry())


def test_the_version_is_the_content_of_the_files_wherever_they_are(tmp_path: Path) -> None:
    people = invented_people(2, seed=1)
    a = write_sdn(tmp_path / "a" / "sdn.csv", people)
    b = write_sdn(tmp_path / "b" / "sdn.csv", people)
    c = write_sdn(tmp_path / "c" / "sdn.csv", people[:1])
    assert files_version(ListFiles(sdn=a))[0] == files_version(ListFiles(sdn=b))[0]
    assert files_version(ListFiles(sdn=a))[0] != files_version(ListFiles(sdn=c))[0]
    loaded = load_lists(ListFiles(sdn=a))
    assert loaded.version == files_version(ListFiles(sdn=a))[0]
    assert loaded.entry_count == 4  # two filler designations, two people
    assert set(loaded.hashes) == set(loaded.entries)


def test_list_kinds_are_told_by_name_or_content(tmp_path: Path) -> None:
    for name, kind in (
        ("sdn.csv", "sdn"),
        ("alt.csv", "alt"),
        ("targets.simple.csv", "opensanctions"),
    ):
        renamed = tmp_path / f"renamed-{name}"
        shutil.copy(SANCTIONS_FIXTURES / name, renamed)
        assert sniff_kind(SANCTIONS_FIXTURES / name) == kind
        assert sniff_kind(renamed) == kind
    junk = tmp_path / "notes.csv"
    junk.write_text("hello,world\n")
    with pytest.raises(ListFileError, match="not a list"):
        sniff_kind(junk)
    assert source_files(SANCTIONS_FIXTURES) == {
        "sdn": SANCTIONS_FIXTURES / "sdn.csv",
        "alt": SANCTIONS_FIXTURES / "alt.csv",
        "opensanctions": SANCTIONS_FIXTURES / "targets.simple.csv",
    }


def test_installing_replaces_the_file_whole_and_skips_an_identical_one(tmp_path: Path) -> None:
    configured = ListFiles(sdn=tmp_path / "live" / "sdn.csv")
    new = write_sdn(tmp_path / "new.csv", invented_people(1, seed=2))
    assert install(configured, {"sdn": new}) == [tmp_path / "live" / "sdn.csv"]
    assert (tmp_path / "live" / "sdn.csv").read_bytes() == new.read_bytes()
    assert [p.name for p in (tmp_path / "live").iterdir()] == ["sdn.csv"]  # no temp file left
    assert install(configured, {"sdn": new}) == []


def test_a_list_the_worker_does_not_read_is_refused(tmp_path: Path) -> None:
    configured = ListFiles(sdn=tmp_path / "sdn.csv")
    with pytest.raises(ListFileError, match="SANCTIONS_OPENSANCTIONS_PATH is not set"):
        candidate(configured, {"opensanctions": SANCTIONS_FIXTURES / "targets.simple.csv"})
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\x1a")
    with pytest.raises(ListFileError, match="no entries"):
        load_lists(ListFiles(sdn=empty))


def test_the_catalog_follows_the_files_and_screens_what_it_hashed(tmp_path: Path) -> None:
    people = invented_people(2, seed=3)
    path = write_sdn(tmp_path / "sdn.csv", people[:1])
    catalog = ListCatalog(ListFiles(sdn=path), threshold=85, check_interval=3600)
    first = catalog.current()
    assert first.screener.list_version == first.version
    path.write_bytes(path.read_bytes().replace(b"\x1a", b"") + sdn_row(people[1]).encode())
    assert catalog.current() is first  # not looked at again within the interval
    fresh = catalog.current(force=True)
    assert fresh.version != first.version and people[1].entry_id in fresh.lists.hashes
