"""ReloadingScreener: lazy load, change detection, failure tolerance, thread safety."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from integrations.sanctions import ReloadingScreener, ScreeningSubject

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sanctions"

EXTRA_ROW = (
    '200,"KOWALSKI, Zbigniew","individual","SDGT",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,'
    '"DOB 1966; nationality Poland."\r\n'
)


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    for name in ("sdn.csv", "alt.csv", "targets.simple.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def _bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_lazy_load_and_reload_on_change(lists: Path):
    screener = ReloadingScreener(sdn=lists / "sdn.csv", alt=lists / "alt.csv", check_interval=0)
    assert screener.reload_count == 0  # nothing loaded until first use
    subject = ScreeningSubject("Zbigniew Kowalski")
    assert screener.screen(subject).decision == "clear"
    version = screener.list_version
    assert screener.reload_count == 1

    sdn = lists / "sdn.csv"
    data = sdn.read_bytes().replace(b"\x1a", b"")
    sdn.write_bytes(data + EXTRA_ROW.encode("cp1252") + b"\x1a")
    _bump(sdn)

    result = screener.screen(subject)
    assert result.decision == "potential_match"
    assert result.best is not None
    assert result.best.entry_id == "ofac-sdn:200"
    assert screener.reload_count == 2
    assert screener.list_version != version
    screener.screen(subject)
    assert screener.reload_count == 2  # unchanged files are not reloaded


def test_stat_is_rate_limited(lists: Path):
    screener = ReloadingScreener(sdn=lists / "sdn.csv", check_interval=3600)
    screener.screen(ScreeningSubject("Vladimir Putin"))
    sdn = lists / "sdn.csv"
    sdn.write_bytes(sdn.read_bytes().replace(b"\x1a", b"") + EXTRA_ROW.encode("cp1252"))
    _bump(sdn)
    assert screener.screen(ScreeningSubject("Zbigniew Kowalski")).decision == "clear"
    assert screener.reload_count == 1


def test_failed_reload_keeps_previous_index(lists: Path):
    osl = lists / "targets.simple.csv"
    screener = ReloadingScreener(opensanctions=osl, check_interval=0)
    assert screener.screen(ScreeningSubject("Saad Hariri")).decision == "potential_match"
    osl.write_text("not,an,opensanctions,file\n", encoding="utf-8")
    _bump(osl)
    assert screener.screen(ScreeningSubject("Saad Hariri")).decision == "potential_match"


def test_first_load_failure_raises(tmp_path: Path):
    screener = ReloadingScreener(sdn=tmp_path / "missing.csv")
    with pytest.raises(OSError, match=r"missing\.csv"):
        screener.screen(ScreeningSubject("x"))


def test_concurrent_first_use_loads_once(lists: Path):
    screener = ReloadingScreener(sdn=lists / "sdn.csv", alt=lists / "alt.csv", check_interval=60)
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                results.append(screener.screen(ScreeningSubject("Vladimir Putin")).decision)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert time.monotonic() - started < 30
    assert results == ["potential_match"] * 160
    assert screener.reload_count == 1
