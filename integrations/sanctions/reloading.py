"""A screener that follows list files on disk.

Lists are republished while workers run; a worker must pick up the new version
without a restart, but must not stat files on every call nor rebuild the index
concurrently from several activity threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from integrations.sanctions.matcher import (
    DEFAULT_THRESHOLD,
    SanctionsScreener,
    ScreeningResult,
    ScreeningSubject,
)

logger = logging.getLogger(__name__)

_Signature = tuple[tuple[str, int, int], ...]


class ReloadingScreener:
    """Lazy-loading, self-refreshing, thread-safe wrapper around :class:`SanctionsScreener`.

    The index is built on first use. Afterwards file mtimes/sizes are checked at
    most once per ``check_interval`` seconds; when any changed the lists are
    reloaded. If a reload fails (e.g. a half-written file) the previous index
    keeps serving and the failure is logged; the next check retries.
    """

    def __init__(
        self,
        *,
        sdn: Path | None = None,
        alt: Path | None = None,
        opensanctions: Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        check_interval: float = 5.0,
    ) -> None:
        if sdn is None and opensanctions is None:
            raise ValueError("at least one list file (sdn or opensanctions) is required")
        self._sdn = Path(sdn) if sdn is not None else None
        self._alt = Path(alt) if alt is not None else None
        self._opensanctions = Path(opensanctions) if opensanctions is not None else None
        self._threshold = threshold
        self._check_interval = check_interval
        self._lock = threading.Lock()
        self._screener: SanctionsScreener | None = None
        self._signature: _Signature | None = None
        self._next_check = 0.0
        self.reload_count = 0

    def _paths(self) -> list[Path]:
        return [p for p in (self._sdn, self._alt, self._opensanctions) if p is not None]

    def _stat(self) -> _Signature:
        sig: list[tuple[str, int, int]] = []
        for path in self._paths():
            try:
                st = os.stat(path)
                sig.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append((str(path), -1, -1))
        return tuple(sig)

    def current(self) -> SanctionsScreener:
        """The screener to use now, (re)loading first if due and needed."""
        now = time.monotonic()
        screener = self._screener
        if screener is not None and now < self._next_check:
            return screener
        with self._lock:
            if self._screener is not None and time.monotonic() < self._next_check:
                return self._screener
            signature = self._stat()
            self._next_check = time.monotonic() + self._check_interval
            if self._screener is not None and signature == self._signature:
                return self._screener
            try:
                fresh = SanctionsScreener.from_files(
                    sdn=self._sdn,
                    alt=self._alt,
                    opensanctions=self._opensanctions,
                    threshold=self._threshold,
                )
            except Exception:
                if self._screener is None:
                    raise
                logger.exception(
                    "sanctions list reload failed; keeping %s", self._screener.list_version
                )
                return self._screener
            if self._screener is not None:
                logger.info(
                    "sanctions lists changed: %s -> %s",
                    self._screener.list_version,
                    fresh.list_version,
                )
            self._screener = fresh
            self._signature = signature
            self.reload_count += 1
            return fresh

    @property
    def list_version(self) -> str:
        return self.current().list_version

    @property
    def entry_count(self) -> int:
        return self.current().entry_count

    def screen(self, subject: ScreeningSubject) -> ScreeningResult:
        return self.current().screen(subject)

    def screen_many(self, subjects: Iterable[ScreeningSubject]) -> list[ScreeningResult]:
        return self.current().screen_many(subjects)
