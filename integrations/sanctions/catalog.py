"""The loaded lists as monitoring sees them: a version per set of list files, a content hash
per entry, and a screening index built from exactly those entries.

Sanctions monitoring (docs/sanctions-monitoring.md) must tell "the same designation as last
time" from "a new or changed one" across list loads, so it needs two things the matcher does
not keep:

* **a list version**: a SHA-256 over the kinds and bytes of every configured list file (the
  same files give the same version on every machine, whatever their modification times);
* **an entry hash**: a SHA-256 over what makes an entry the same designation (list, entity
  type, names and aliases, dates of birth, countries, programmes), blind to the order of
  aliases and to where in the file the row sits. A changed entry (a new alias, a corrected
  date of birth, another programme) gets a new hash and alerts again; an unchanged one does
  not, however often the list is republished.

Hits come from a ``SanctionsScreener`` built over the very entries whose hashes are looked up
(never from a second load of the files that might have changed in between).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from integrations.sanctions.loader import (
    ENTRY_HASH_LENGTH,
    ListEntry,
    entry_content_hash,
    load_ofac_sdn,
    load_opensanctions,
)
from integrations.sanctions.matcher import DEFAULT_THRESHOLD, SanctionsScreener, ScreeningHit

logger = logging.getLogger(__name__)

ListKind = Literal["sdn", "alt", "opensanctions"]
KINDS: tuple[ListKind, ...] = ("sdn", "alt", "opensanctions")
WELL_KNOWN_NAMES: dict[str, ListKind] = {
    "sdn.csv": "sdn",
    "alt.csv": "alt",
    "targets.simple.csv": "opensanctions",
}
VERSION_LENGTH = 16  # hex characters of the list version (64 bits)


class ListFileError(ValueError):
    """A list file that cannot be used: missing, of an unknown kind, or with no entries."""


@dataclass(frozen=True)
class ListFiles:
    """Where each kind of list lives (``alt`` only goes with ``sdn``)."""

    sdn: Path | None = None
    alt: Path | None = None
    opensanctions: Path | None = None

    def present(self) -> list[tuple[ListKind, Path]]:
        """The configured files, in a fixed order."""
        found: list[tuple[ListKind, Path]] = []
        for kind in KINDS:
            path = getattr(self, kind)
            if path is not None:
                found.append((kind, Path(path)))
        return found

    def with_(self, paths: dict[ListKind, Path]) -> ListFiles:
        values: dict[str, Path | None] = {kind: getattr(self, kind) for kind in KINDS}
        for kind, path in paths.items():
            values[kind] = path
        return ListFiles(**values)

    def check(self) -> None:
        if self.sdn is None and self.opensanctions is None:
            raise ListFileError("no list configured: set an SDN or an OpenSanctions list")
        if self.alt is not None and self.sdn is None:
            raise ListFileError("an alt.csv (aliases) list needs its sdn.csv")
        for kind, path in self.present():
            if not path.is_file():
                raise ListFileError(f"{kind} list {path} does not exist")


# ----------------------------------------------------------------------------- hashing
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_of(digests: Iterable[tuple[str, str]]) -> str:
    """The list version of a set of (kind, file SHA-256) pairs."""
    digest = hashlib.sha256()
    for kind, sha in sorted(digests):
        digest.update(f"{kind}={sha}\n".encode())
    return digest.hexdigest()[:VERSION_LENGTH]


def files_version(files: ListFiles) -> tuple[str, dict[str, str]]:
    """The version of the configured files and each file's SHA-256, by kind."""
    files.check()
    digests: dict[str, str] = {kind: file_sha256(path) for kind, path in files.present()}
    return version_of(digests.items()), digests


# ----------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class LoadedLists:
    """One version of the lists: every entry with its content hash."""

    version: str
    digests: dict[str, str]
    entries: dict[str, ListEntry]
    hashes: dict[str, str] = field(repr=False)

    @property
    def entry_count(self) -> int:
        return len(self.entries)

    def entry_hash(self, entry_id: str) -> str:
        return self.hashes[entry_id]


def _signature(files: ListFiles) -> tuple[tuple[str, int, int, int], ...]:
    sig: list[tuple[str, int, int, int]] = []
    for _, path in files.present():
        try:
            st = os.stat(path)
            sig.append((str(path), st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append((str(path), -1, -1, -1))
    return tuple(sig)


def _parse(files: ListFiles) -> list[ListEntry]:
    entries: list[ListEntry] = []
    if files.sdn is not None:
        entries.extend(load_ofac_sdn(Path(files.sdn), Path(files.alt) if files.alt else None))
    if files.opensanctions is not None:
        entries.extend(load_opensanctions(Path(files.opensanctions)))
    return entries


def load_lists(files: ListFiles, *, attempts: int = 3) -> LoadedLists:
    """Parse the files and hash every entry. A file replaced while it was read is read again
    (lists are installed by an atomic rename, so a second read sees one whole version)."""
    for attempt in range(attempts):
        before = _signature(files)
        version, digests = files_version(files)
        parsed = _parse(files)
        if _signature(files) == before:
            break
        logger.info("sanctions list changed while loading; reading again (%d)", attempt + 1)
    if not parsed:
        raise ListFileError(f"no entries in {', '.join(str(p) for _, p in files.present())}")
    entries = {e.entry_id: e for e in parsed}
    return LoadedLists(
        version=version,
        digests=digests,
        entries=entries,
        hashes={entry_id: entry_content_hash(e) for entry_id, e in entries.items()},
    )


@dataclass(frozen=True)
class MonitoredLists:
    """A loaded version and the screening index over exactly its entries."""

    lists: LoadedLists
    screener: SanctionsScreener

    @property
    def version(self) -> str:
        return self.lists.version


class ListCatalog:
    """The lists at the configured paths, loaded on first use and again when a file changes
    (checked at most every ``check_interval`` seconds). Thread-safe; a reload that fails keeps
    the previous version in service, like ``ReloadingScreener``."""

    def __init__(
        self,
        files: ListFiles,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        check_interval: float = 2.0,
    ) -> None:
        self.files = files
        self.threshold = float(threshold)
        self._check_interval = check_interval
        self._lock = threading.Lock()
        self._current: MonitoredLists | None = None
        self._signature: tuple[tuple[str, int, int, int], ...] | None = None
        self._next_check = 0.0

    def current(self, *, force: bool = False) -> MonitoredLists:
        """The lists to screen with now (blocking: the first call builds the index).
        ``force``: look at the files now, whenever they were last looked at."""
        current = self._current
        if current is not None and not force and time.monotonic() < self._next_check:
            return current
        with self._lock:
            signature = _signature(self.files)
            self._next_check = time.monotonic() + self._check_interval
            if self._current is not None and signature == self._signature:
                return self._current
            try:
                lists = load_lists(self.files)
                screener = SanctionsScreener(
                    list(lists.entries.values()),
                    list_version=lists.version,
                    threshold=self.threshold,
                )
            except Exception:
                if self._current is None:
                    raise
                logger.exception(
                    "sanctions list reload failed; keeping version %s", self._current.version
                )
                return self._current
            self._current = MonitoredLists(lists, screener)
            self._signature = signature
            return self._current


# ----------------------------------------------------------------------------- audit records
def _component(component: Any) -> dict[str, Any]:
    as_dict = getattr(component, "as_dict", None)
    if callable(as_dict):
        return dict(as_dict())
    if dataclasses.is_dataclass(component) and not isinstance(component, type):
        return dataclasses.asdict(component)
    return {"detail": str(component)}


def hit_record(
    hit: ScreeningHit, *, threshold: float, entry_hash: str | None = None
) -> dict[str, Any]:
    """A hit as it is kept for audit: the entry, the score, how it came about, the threshold,
    and (``entry_hash``) the content hash of the entry as it read when it was matched, which
    tells a later re-screen whether the designation is still the one reviewed."""
    record: dict[str, Any] = {
        "list_name": hit.list_name,
        "entry_id": hit.entry_id,
        "matched_name": hit.matched_name,
        "score": hit.score,
        "explanation": hit.explanation,
        "threshold": float(getattr(hit, "threshold", threshold)),
        "breakdown": [_component(c) for c in getattr(hit, "breakdown", ())],
    }
    if entry_hash is not None:
        record["entry_hash"] = entry_hash
    return record


# ----------------------------------------------------------------------------- installing
def sniff_kind(path: Path) -> ListKind:
    """Which list a file is, from its content: OpenSanctions' simple CSV has an id,name header;
    an SDN row has 12 columns and an entity number; an alias row has ent_num, alt_num, type."""
    known = WELL_KNOWN_NAMES.get(path.name)
    if known is not None:
        return known
    with path.open(encoding="cp1252", errors="replace", newline="") as handle:
        for row in csv.reader(handle):
            cells = [c.strip() for c in row]
            if not any(c.strip("\x1a") for c in cells):
                continue
            lowered = {c.lower() for c in cells}
            if {"id", "name"} <= lowered:
                return "opensanctions"
            if len(cells) >= 12 and cells[0].isdigit():
                return "sdn"
            if 4 <= len(cells) <= 6 and cells[0].isdigit() and cells[1].isdigit():
                return "alt"
            break
    raise ListFileError(
        f"{path}: not a list this service reads (OFAC sdn.csv or alt.csv, or an OpenSanctions "
        "targets.simple.csv); name it after its kind or pass --kind"
    )


def source_files(path: Path, kind: ListKind | None = None) -> dict[ListKind, Path]:
    """The list files a path gives: one file (of ``kind``, or sniffed), or a folder holding
    ``sdn.csv``, ``alt.csv`` and/or ``targets.simple.csv``."""
    if path.is_dir():
        if kind is not None:
            raise ListFileError("--kind is for a single file, not a folder")
        found: dict[ListKind, Path] = {
            k: path / name for name, k in WELL_KNOWN_NAMES.items() if (path / name).is_file()
        }
        if not found:
            names = ", ".join(WELL_KNOWN_NAMES)
            raise ListFileError(f"{path}: no list files in it (looked for {names})")
        return found
    if not path.is_file():
        raise ListFileError(f"{path} does not exist")
    return {kind or sniff_kind(path): path}


def candidate(configured: ListFiles, given: dict[ListKind, Path]) -> ListFiles:
    """The files the worker would read once ``given`` replaced the configured ones."""
    for kind in given:
        if getattr(configured, kind) is None:
            setting = {
                "sdn": "SANCTIONS_SDN_PATH",
                "alt": "SANCTIONS_ALT_PATH",
                "opensanctions": "SANCTIONS_OPENSANCTIONS_PATH",
            }[kind]
            raise ListFileError(f"{setting} is not set: the worker reads no {kind} list")
    return configured.with_(given)


def install(configured: ListFiles, given: dict[ListKind, Path]) -> list[Path]:
    """Copy each given file over its configured path atomically (a temporary file beside it,
    then a rename): a reader sees the old file or the new one, never half of one. Returns the
    paths written (a file already identical is left alone)."""
    written: list[Path] = []
    for kind, source in given.items():
        dest = getattr(configured, kind)
        assert dest is not None  # candidate() checked
        dest = Path(dest)
        if dest.exists() and source.resolve() == dest.resolve():
            continue
        if dest.exists() and file_sha256(dest) == file_sha256(source):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            shutil.copyfile(source, tmp)
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(dest)
    return written


__all__ = [
    "ENTRY_HASH_LENGTH",
    "KINDS",
    "ListCatalog",
    "ListFileError",
    "ListFiles",
    "LoadedLists",
    "MonitoredLists",
    "candidate",
    "entry_content_hash",
    "file_sha256",
    "files_version",
    "hit_record",
    "install",
    "load_lists",
    "sniff_kind",
    "source_files",
    "version_of",
]
