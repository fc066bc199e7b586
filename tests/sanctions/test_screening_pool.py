"""The re-screen's process pool gives exactly what one ``screen_many`` in the worker gives,
and refuses (so the worker screens in-process) once the files read as another version."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.screening_data import LIST_DIR
from integrations.sanctions.catalog import ListCatalog, ListFiles
from integrations.sanctions.pool import (
    MIN_CHUNK,
    ScreeningPool,
    VersionMismatch,
    default_processes,
)
from tests.sanctions.labelled import ROWS
from tests.sanctions.labelled import subject_of as _subject


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ListFiles:
    folder = tmp_path_factory.mktemp("lists")
    for name in ("sdn.csv", "alt.csv"):
        shutil.copy(LIST_DIR / name, folder / name)
    return ListFiles(sdn=folder / "sdn.csv", alt=folder / "alt.csv")


@pytest.fixture(scope="module")
def pool(files: ListFiles) -> Iterator[ScreeningPool]:
    screening = ScreeningPool(files, threshold=85.0, processes=2)
    yield screening
    screening.close()


def test_small_batches_are_not_split(pool: ScreeningPool):
    assert pool.parts(MIN_CHUNK * 2 - 1) == 1
    assert pool.parts(MIN_CHUNK * 2) == 2
    assert pool.parts(100_000) == 2  # never more chunks than processes


def test_the_pool_gives_what_one_batch_in_process_gives(files: ListFiles, pool: ScreeningPool):
    subjects = [_subject(r) for r in ROWS[:: max(1, len(ROWS) // 600)]]
    here = ListCatalog(files, threshold=85.0).current()
    expected = here.screener.screen_many(subjects)
    got = pool.screen_many(subjects, version=here.version)
    assert len(got) == len(subjects)
    assert got == expected
    assert sum(bool(r.hits) for r in got) > 0  # the set holds listed names: hits came back
    assert {r.list_version for r in got} == {here.version}


def test_other_files_than_the_batch_expects_are_refused(files: ListFiles, pool: ScreeningPool):
    subjects = [_subject(r) for r in ROWS[: MIN_CHUNK * 2]]
    with pytest.raises(VersionMismatch):
        pool.screen_many(subjects, version="0" * 16)


def test_a_list_update_is_picked_up_between_batches(tmp_path: Path):
    folder = tmp_path / "lists"
    folder.mkdir()
    shutil.copy(LIST_DIR / "sdn.csv", folder / "sdn.csv")
    files = ListFiles(sdn=folder / "sdn.csv")
    subjects = [_subject(r) for r in ROWS[: MIN_CHUNK * 2]]
    screening = ScreeningPool(files, threshold=85.0, processes=2)
    try:
        before = ListCatalog(files).current().version
        assert {r.list_version for r in screening.screen_many(subjects, version=before)} == {before}
        lines = (LIST_DIR / "sdn.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "sdn.csv").write_text("".join(lines[:-1]), encoding="utf-8")  # one entry less
        after = ListCatalog(files).current().version
        assert after != before
        got = screening.screen_many(subjects, version=after)
        assert {r.list_version for r in got} == {after}
    finally:
        screening.close()


def _topology(root: Path, cpus: dict[int, str]) -> Path:
    """A made-up /sys/devices/system/cpu: each CPU with the list of its core's threads."""
    for cpu, siblings in cpus.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "thread_siblings_list").write_text(f"{siblings}\n")
    return root


def test_one_process_per_physical_core_by_default(tmp_path: Path):
    unlimited = tmp_path / "cgroup-none"  # no cgroup files: no CPU limit
    # two cores with two hyperthreads each: two processes, not four
    smt = _topology(tmp_path / "smt", {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert default_processes(smt, {0, 1, 2, 3}, unlimited) == 2
    # only the CPUs this process may run on count (a cpuset of one core's two threads)
    assert default_processes(smt, {0, 2}, unlimited) == 1
    # no hyperthreads: every CPU is a core
    plain = _topology(tmp_path / "plain", {i: str(i) for i in range(8)})
    assert default_processes(plain, set(range(8)), unlimited) == 8
    # no topology to read: psutil's count, never more than the CPUs allowed
    assert 1 <= default_processes(tmp_path / "none", {0, 1}, unlimited) <= 2


def test_a_container_cpu_limit_caps_the_pool(tmp_path: Path):
    plain = _topology(tmp_path / "plain", {i: str(i) for i in range(16)})
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: two processes
    assert default_processes(plain, set(range(16)), v2) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert default_processes(plain, set(range(16)), v2) == 16
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert default_processes(plain, set(range(16)), v1) == 3
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # no limit
    assert default_processes(plain, set(range(16)), v1) == 16
