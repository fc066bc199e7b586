"""``onboarding history import/export``: all or nothing, idempotent, and a lossless round trip.

Each test imports cases of its own case type and refs (the test database is shared) and runs
the command as an operator would: its own event loop, engine and exit code.
"""

from __future__ import annotations

import time
from datetime import timedelta

from schemas.history import COLUMNS
from tests.history.helpers import T0, case_rows, case_type, cli, csv_text, forget, held, write

HEADER = ",".join(COLUMNS)


def _refs(rows: list[dict[str, str]]) -> list[str]:
    return sorted({r["case_ref"] for r in rows})


async def test_importing_the_same_file_twice_adds_nothing_the_second_time(
    database_url, sessions, tmp_path, capsys
):
    ctype = case_type()
    rows = case_rows(ctype) + case_rows(ctype, stages=[("intake", "sent_back")])
    path = write(tmp_path, csv_text(rows))

    assert await cli(database_url, "import", str(path)) == 0
    assert capsys.readouterr().out.strip() == "3 stage intervals read, 3 new, 0 already loaded"
    first = await held(sessions, _refs(rows))
    assert len(first) == 3 and {r[-1] for r in first} == {"imported"}

    assert await cli(database_url, "import", str(path)) == 0
    assert capsys.readouterr().out.strip() == "3 stage intervals read, 0 new, 3 already loaded"
    assert await held(sessions, _refs(rows)) == first


async def test_a_file_overlapping_what_is_held_loads_only_the_new_intervals(
    database_url, sessions, tmp_path, capsys
):
    ctype = case_type()
    one = case_rows(ctype, stages=[("intake", "completed"), ("review", "completed")])
    assert await cli(database_url, "import", str(write(tmp_path, csv_text(one[:1])))) == 0
    capsys.readouterr()
    more = one + case_rows(ctype)
    assert await cli(database_url, "import", str(write(tmp_path, csv_text(more)))) == 0
    assert capsys.readouterr().out.strip() == "4 stage intervals read, 3 new, 1 already loaded"
    assert len(await held(sessions, _refs(more))) == 4


async def test_a_malformed_file_reports_every_bad_line_and_loads_nothing(
    database_url, sessions, tmp_path, capsys
):
    ctype = case_type()
    good_a = case_rows(ctype, stages=[("intake", "completed")])[0]
    good_b = case_rows(ctype, stages=[("review", "completed")])[0]
    bad_time = {**case_rows(ctype)[0], "entered_at": "yesterday at nine"}
    bad_outcome = {**case_rows(ctype)[0], "outcome": "approved"}
    text = csv_text([good_a, bad_time, bad_outcome]).splitlines()
    text.append(",".join(list(case_rows(ctype)[0].values())[:9]))  # line 5: 9 of 13 columns
    text += csv_text([good_b, good_a]).splitlines()[1:]  # line 6 fine, line 7 = line 2 again
    path = write(tmp_path, "\n".join(text) + "\n")

    assert await cli(database_url, "import", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    problems = captured.err.strip().splitlines()
    assert problems[:-1] == [
        "line 3: entered_at 'yesterday at nine' is not an ISO 8601 time",
        "line 4: outcome must be one of completed, sent_back, skipped, cancelled, not 'approved'",
        "line 5: expected 13 columns",
        "line 7: the same stage interval as line 2",
    ]
    assert problems[-1] == "4 problem(s): nothing loaded"
    refs = [good_a["case_ref"], good_b["case_ref"], bad_time["case_ref"], bad_outcome["case_ref"]]
    assert await held(sessions, refs) == []  # not even the good lines


async def test_the_header_must_be_exact(database_url, sessions, tmp_path, capsys):
    ctype = case_type()
    rows = case_rows(ctype)
    swapped = ("case_type", "case_ref", *COLUMNS[2:])
    for columns in (swapped, COLUMNS[:-1], (*COLUMNS, "notes"), ("Case_Ref", *COLUMNS[1:])):
        extended = [{**r, "notes": "x", "Case_Ref": r["case_ref"]} for r in rows]
        path = write(tmp_path, csv_text(extended, columns))
        assert await cli(database_url, "import", str(path)) == 1, columns
        err = capsys.readouterr().err
        assert err.startswith(f"line 1: the header must be exactly: {', '.join(COLUMNS)}\n")
    assert await held(sessions, _refs(rows)) == []

    assert await cli(database_url, "import", str(write(tmp_path, csv_text(rows)))) == 0
    out = tmp_path / "out.csv"
    assert await cli(database_url, "export", str(out), "--case-type", ctype) == 0
    assert out.read_text().splitlines()[0] == HEADER


async def test_a_missing_file_is_an_error_not_a_crash(database_url, tmp_path, capsys):
    assert await cli(database_url, "import", str(tmp_path / "nope.csv")) == 1
    assert "cannot read" in capsys.readouterr().err


async def test_export_then_import_into_an_empty_history_gives_the_same_rows(
    database_url, sessions, tmp_path, capsys
):
    ctype = case_type()
    offset = "2025-03-03T10:00:00+01:00"  # T0, written with a non-UTC offset
    rows = (
        case_rows(ctype, stages=[("intake", "completed"), ("review", "sent_back")])
        + case_rows(ctype, service_requirements="", documents_submitted_at_creation="false")
        + case_rows(
            ctype,
            created=T0 + timedelta(days=3),
            stages=[("intake", "skipped"), ("review", "cancelled")],
            tier="standard",
            country="gb",
        )
    )
    rows[1]["breached"] = "true"
    rows[0]["created_at"] = rows[1]["created_at"] = offset
    assert await cli(database_url, "import", str(write(tmp_path, csv_text(rows)))) == 0
    refs = _refs(rows)
    before = await held(sessions, refs)
    assert len(before) == 6
    capsys.readouterr()

    first = tmp_path / "first.csv"
    assert await cli(database_url, "export", str(first), "--case-type", ctype) == 0
    assert capsys.readouterr().out.strip() == f"6 stage intervals written to {first}"
    lines = first.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 7
    assert [line.split(",")[0] for line in lines[1:]] == sorted(
        line.split(",")[0] for line in lines[1:]
    )

    await forget(sessions, refs)  # an empty history, as far as these cases go
    assert await cli(database_url, "import", str(first)) == 0
    assert capsys.readouterr().out.strip() == "6 stage intervals read, 6 new, 0 already loaded"
    assert await held(sessions, refs) == before

    second = tmp_path / "second.csv"
    assert await cli(database_url, "export", str(second), "--case-type", ctype) == 0
    assert second.read_bytes() == first.read_bytes()


async def test_export_narrows_by_case_type_and_creation_date(
    database_url, sessions, tmp_path, capsys
):
    ctype, other = case_type(), case_type()
    early = case_rows(ctype, created=T0)
    late = case_rows(ctype, created=T0 + timedelta(days=10))
    elsewhere = case_rows(other, created=T0 + timedelta(days=10))
    assert (
        await cli(database_url, "import", str(write(tmp_path, csv_text(early + late + elsewhere))))
        == 0
    )
    capsys.readouterr()

    since = (T0 + timedelta(days=5)).date().isoformat()
    assert await cli(database_url, "export", "-", "--case-type", ctype, "--since", since) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == HEADER
    assert {line.split(",")[0] for line in out[1:]} == {late[0]["case_ref"]}
    assert len(out) == 1 + len(late)


async def test_a_large_file_loads_in_batches_quickly(database_url, sessions, tmp_path, capsys):
    ctype = case_type()
    stages = [(f"stage_{i}", "completed") for i in range(10)]
    rows = [r for _ in range(10_000) for r in case_rows(ctype, stages=stages)]  # 100,000
    path = write(tmp_path, csv_text(rows))
    started = time.monotonic()
    try:
        assert await cli(database_url, "import", str(path)) == 0
        elapsed = time.monotonic() - started
        assert capsys.readouterr().out.strip() == (
            "100000 stage intervals read, 100000 new, 0 already loaded"
        )
        assert elapsed < 60, elapsed
    finally:
        await forget(sessions, _refs(rows))
