"""Batch screening on every core: a pool of screening processes for the re-screen.

``SanctionsScreener.screen_many`` is pure Python and holds the GIL, so one process screens at
the speed of one core however many the machine has. A re-screen of every client after a list
update is the one place where that matters: it is a large batch with nobody waiting on a
single answer. ``ScreeningPool`` splits such a batch across long-lived worker processes, each
with its own index over the same list files.

- Each process loads the lists itself (a ``ListCatalog`` over the configured files), so no
  index is pickled across; it keeps its catalog and its name caches between batches and list
  versions, as the worker's own screener does.
- A batch names the list version it expects. A process whose files read as another version
  looks again at once; if they still differ (the files changed mid-run), the batch fails
  with ``VersionMismatch`` and the caller screens it in-process instead.
- Results do not depend on the batch a name is in (``matcher`` guarantees it), so the chunks
  give exactly what one ``screen_many`` over the whole batch gives.
- Processes are started with ``spawn``: forking the worker, which runs Temporal's core
  threads and an event loop, is not safe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import psutil

from integrations.sanctions.catalog import ListCatalog, ListFiles
from integrations.sanctions.matcher import ScreeningResult, ScreeningSubject

logger = logging.getLogger(__name__)

MIN_CHUNK = 100  # below this a chunk's round trip costs more than the core it frees


class VersionMismatch(RuntimeError):
    """A screening process reads the list files as another version than the batch expects."""


# --------------------------------------------------------------- inside a screening process
_catalog: ListCatalog | None = None


def _start(files: ListFiles, threshold: float) -> None:
    global _catalog
    _catalog = ListCatalog(files, threshold=threshold)


def _screen_chunk(version: str, subjects: list[ScreeningSubject]) -> list[ScreeningResult]:
    assert _catalog is not None, "the pool initializer did not run"
    lists = _catalog.current()
    if lists.version != version:
        lists = _catalog.current(force=True)
    if lists.version != version:
        raise VersionMismatch(f"the files read as version {lists.version}, not {version}")
    return lists.screener.screen_many(subjects)


def _warm(version: str) -> str:
    """Build the process's index now (the first batch would otherwise pay for it)."""
    assert _catalog is not None, "the pool initializer did not run"
    return _catalog.current(force=True).version


# --------------------------------------------------------------- in the calling process
SYS_CPU = Path("/sys/devices/system/cpu")
CGROUP = Path("/sys/fs/cgroup")


def default_processes(
    sys_cpu: Path = SYS_CPU, allowed: set[int] | None = None, cgroup: Path = CGROUP
) -> int:
    """One screening process per physical core this process may use, within its CPU quota.

    Two hyperthreads of one core gave a pool little (1.18x on first sight, and less than one
    process on names seen before: a chunk rarely lands on the process that saw its names),
    while two real cores nearly double the rate (docs/BENCHMARKS.md); so siblings count once.
    A container's CPU limit (cgroup ``cpu.max``) caps it: a pod limited to two CPUs on a
    16-core node gets two processes, not sixteen indexes.
    """
    if allowed is None and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
    if not allowed:
        cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    else:
        siblings: set[str] = set()
        for cpu in allowed:
            topology = sys_cpu / f"cpu{cpu}" / "topology"
            try:  # the CPUs sharing this one's core: the same text for each of them
                siblings.add((topology / "thread_siblings_list").read_text().strip())
            except OSError:
                siblings = set()
                break
        cores = len(siblings) or min(len(allowed), psutil.cpu_count(logical=False) or 1)
    quota = cpu_quota(cgroup)
    return max(1, min(cores, quota) if quota else cores)


def cpu_quota(cgroup: Path = CGROUP) -> int | None:
    """The CPUs a cgroup CPU limit allows (rounded up), or None without a limit."""
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, -(-quota_us // period_us)) if quota_us > 0 and period_us > 0 else None


class ScreeningPool:
    """Screens large batches across ``processes`` processes; small ones are not split."""

    def __init__(self, files: ListFiles, *, threshold: float, processes: int) -> None:
        if processes < 2:
            raise ValueError("a screening pool needs at least two processes")
        self.files = files
        self.threshold = float(threshold)
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(self.files, self.threshold),
                )
            return self._executor

    def warm(self, version: str) -> None:
        """Start every process and build its index (blocking)."""
        pool = self._pool()
        # Tasks are not addressed to processes: a process busy building its index takes no
        # second one, so twice as many tasks as processes reach every one in practice.
        for f in [pool.submit(_warm, version) for _ in range(self.processes * 2)]:
            f.result()

    def parts(self, count: int) -> int:
        """How many chunks a batch of ``count`` is split into (1: not worth a round trip)."""
        return min(self.processes, max(1, count // MIN_CHUNK))

    def screen_many(
        self, subjects: Sequence[ScreeningSubject], *, version: str
    ) -> list[ScreeningResult]:
        """The results of ``screen_many(subjects)`` at ``version``, in order (blocking).
        Raises ``VersionMismatch`` if the files no longer read as ``version``."""
        items = list(subjects)
        parts = self.parts(len(items))
        size = -(-len(items) // parts) if items else 0
        chunks = [items[i : i + size] for i in range(0, len(items), size)] if items else []
        try:
            pool = self._pool()
            futures: list[Future[list[ScreeningResult]]] = [
                pool.submit(_screen_chunk, version, chunk) for chunk in chunks
            ]
            results: list[ScreeningResult] = []
            for future in futures:
                results.extend(future.result())
            return results
        except BrokenProcessPool:
            # a screening process died (killed, out of memory): start afresh next time
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
