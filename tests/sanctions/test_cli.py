"""``onboarding screen`` as a user runs it: JSON lines in, one JSON line out per input line,
in order; what the flags change; errors and exit codes. Through a real subprocess (the
standalone module and the installed ``onboarding`` script) and in-process via ``cli.main``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cli.main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "sanctions"
LIST_ARGS = [
    "--sdn",
    str(FIXTURES / "sdn.csv"),
    "--alt",
    str(FIXTURES / "alt.csv"),
    "--opensanctions",
    str(FIXTURES / "targets.simple.csv"),
]


def _run(stdin: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.screen", *LIST_ARGS, *extra],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_round_trip_preserves_order():
    lines = [
        {"id": "a", "name": "John Smith"},
        {"id": "b", "name": "Vladimir Putin", "dob": "1952-10-07", "country": "RU"},
        {"id": "c", "name": "Саад Харири"},
        {"id": "d", "name": "Kenji Tanaka", "country": "jp"},
    ]
    proc = _run("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c", "d"]
    assert set(out[0]) == {"id", "decision", "score", "matched_name", "list_entry_id"}
    assert (out[0]["id"], out[0]["decision"]) == ("a", "clear")
    assert (out[0]["matched_name"], out[0]["list_entry_id"]) == (None, None)  # names no one
    assert 0 <= out[0]["score"] < 85  # below the default threshold
    assert out[1]["decision"] == "potential_match"
    assert out[1]["list_entry_id"] == "ofac-sdn:100"
    assert out[1]["matched_name"] in ("PUTIN, Vladimir", "PUTIN, Vladimir Vladimirovich")
    assert 0 <= out[1]["score"] <= 100
    assert out[2]["list_entry_id"] == "opensanctions:Q296771"
    assert out[3]["decision"] == "clear"


def test_bad_lines_yield_errors_and_exit_1():
    stdin = (
        "\n".join(
            [
                '{"id": "ok1", "name": "Vladimir Putin"}',
                '{"id": "broken", "name": ',
                '{"id": "nodob", "name": "Jane Roe", "dob": "1990-13-45"}',
                '{"id": "noname"}',
                '{"id": "badcountry", "name": "Jane Roe", "country": "Germany"}',
                '["not", "an", "object"]',
                "",
                '{"id": "ok2", "name": "Jane Roe"}',
            ]
        )
        + "\n"
    )
    proc = _run(stdin)
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 7  # blank line is not an input
    assert out[0]["decision"] == "potential_match"
    assert out[1]["id"] is None
    assert out[1]["line"] == 2
    assert "invalid JSON" in out[1]["error"]
    assert out[2]["id"] == "nodob"
    assert "dob" in out[2]["error"]
    assert out[3]["id"] == "noname"
    assert "name" in out[3]["error"]
    assert out[4]["id"] == "badcountry"
    assert "country" in out[4]["error"]
    assert "JSON object" in out[5]["error"]
    assert out[6]["id"] == "ok2" and out[6]["decision"] == "clear"
    assert out[6]["matched_name"] is None and out[6]["list_entry_id"] is None
    assert set(out[6]) == {"id", "decision", "score", "matched_name", "list_entry_id"}


def test_missing_list_file_exits_2():
    proc = subprocess.run(
        [sys.executable, "-m", "cli.screen", "--sdn", str(FIXTURES / "nope.csv")],
        input="",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "cannot load lists" in proc.stderr


def _screen_in_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str,
    *args: str,
) -> tuple[int, list[dict[str, Any]], str]:
    """``onboarding screen ...`` through ``cli.main.main`` (logging set-up stubbed, as in
    tests/test_cli.py); returns the exit code, the JSON lines printed and stderr."""
    monkeypatch.setattr(cli.main, "configure_logging", lambda level: None)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main.main(["screen", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_threshold_flag_decides_what_counts_as_a_match(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    near = '{"id": "n", "name": "Vladimr Puttin"}\n'  # a misspelling scoring about 92

    code, default, _ = _screen_in_process(monkeypatch, capsys, near, *LIST_ARGS)
    assert code == 0
    assert [(o["id"], o["decision"], o["list_entry_id"]) for o in default] == [
        ("n", "potential_match", "ofac-sdn:100")
    ]
    assert 85 <= default[0]["score"] < 95

    code, strict, _ = _screen_in_process(monkeypatch, capsys, near, *LIST_ARGS, "--threshold", "95")
    assert code == 0
    assert strict == [
        {
            "id": "n",
            "decision": "clear",
            "score": default[0]["score"],  # same score, judged against the stricter bar
            "matched_name": None,
            "list_entry_id": None,
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --sdn and/or --opensanctions"),
        ([*LIST_ARGS, "--threshold", "101"], "--threshold must be between 0 and 100"),
    ],
    ids=["no-lists", "threshold-out-of-range"],
)
def test_refuses_to_screen_without_lists_or_with_a_bad_threshold(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, out, err = _screen_in_process(
        monkeypatch, capsys, '{"id": "x", "name": "Vladimir Putin"}\n', *args
    )
    assert code == 2
    assert out == []  # nothing screened, nothing printed
    assert message in err


def test_installed_onboarding_script_screens() -> None:
    """The operator's command, ``onboarding screen``: the console script when installed next
    to this interpreter, else the same entry point as ``python -m cli.main``."""
    script = Path(sys.executable).parent / "onboarding"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]
    proc = subprocess.run(
        [*command, "screen", *LIST_ARGS],
        input='{"id": "x", "name": "Vladimir Putin"}\n{"id": "y", "name": "Kenji Tanaka"}\n',
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout is only JSON lines
    assert [(o["id"], o["decision"], o["list_entry_id"]) for o in out] == [
        ("x", "potential_match", "ofac-sdn:100"),
        ("y", "clear", None),
    ]
    assert "SDN row without ent_num/name, skipped" in proc.stderr  # warnings go to stderr
