"""CLI round trip through a real subprocess: order, shape, errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert out[0] == {
        "id": "a",
        "decision": "clear",
        "score": out[0]["score"],
        "matched_name": out[0]["matched_name"],
        "list_entry_id": out[0]["list_entry_id"],
    }
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


def test_registers_into_an_argparse_cli():
    import argparse

    from cli.screen import add_parser, run

    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["screen", *LIST_ARGS, "--threshold", "90"])
    assert args.func is run
    assert args.threshold == 90.0
    assert args.sdn == FIXTURES / "sdn.csv"


def test_wired_into_cli_main_when_present():
    try:
        from cli.main import main  # the lead owns cli/main.py
    except ImportError:
        pytest.skip("cli.main not present yet")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cli.main import main; sys.exit(main(sys.argv[1:]))",
            "screen",
            *LIST_ARGS,
        ],
        input='{"id": "x", "name": "Vladimir Putin"}\n',
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    if proc.returncode == 2 and "invalid choice" in proc.stderr:
        pytest.skip("cli.main does not register the screen subcommand yet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["decision"] == "potential_match"
    assert callable(main)
