"""The ``onboarding`` console script: what an operator sees when running it.

In-process through ``cli.main.main`` (logging set-up stubbed so tests do not reconfigure the
root logger), plus one run of the installed script to prove the entry point is wired.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cli.main
from cli.main import main
from notifications.milestones import Milestone
from notifications.render import sample_context

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (
    "run",
    "worker",
    "api",
    "migrate",
    "screen",
    "notify-preview",
    "reproject",
    "history",
    "eta",
    "risk",
    "whatif",
    "dashboard",
    "sanctions",
)


@pytest.fixture(autouse=True)
def _no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.main, "configure_logging", lambda level: None)


def _listed_commands(help_text: str) -> set[str]:
    """The subcommands named in argparse's ``{a,b,c}`` choice list."""
    match = re.search(r"\{([a-z,-]+)\}", help_text)
    assert match, help_text
    return set(match.group(1).split(","))


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert _listed_commands(out) == set(COMMANDS)
    for command in COMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\s+\S", out, re.MULTILINE), command


def test_installed_script_runs_help() -> None:
    script = Path(sys.executable).parent / "onboarding"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _listed_commands(proc.stdout) == set(COMMANDS)


def test_notify_preview_prints_the_rendered_message(capsys: pytest.CaptureFixture[str]) -> None:
    ref = sample_context(Milestone.CASE_CREATED).case_ref
    assert main(["notify-preview", "case_created", "--format", "text"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Subject: ")
    assert ref in captured.out.splitlines()[0]  # the subject names the case
    assert f"Case reference: {ref}" in captured.out
    assert "{{" not in captured.out and "{%" not in captured.out  # fully rendered
    assert captured.err == ""


def test_notify_preview_refuses_an_unknown_milestone(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["notify-preview", "no_such_milestone"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_reproject_without_refs_or_all_exits_2_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reproject"]) == 2
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "case reference" in said and "--all" in said


@pytest.mark.parametrize("argv", [["no-such-command"], []])
def test_unknown_or_missing_command_fails(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code not in (0, None)
    assert "usage: onboarding" in capsys.readouterr().err


def test_production_with_dev_defaults_is_refused_in_one_line_naming_the_settings() -> None:
    import os

    exe = Path(sys.executable).with_name("onboarding")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("API_", "SESSION_", "PAYLOAD_"))
    }
    env["APP_ENV"] = "production"
    done = subprocess.run(
        [str(exe), "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("onboarding: configuration refused:")
    for name in ("API_KEYS", "SESSION_SECRET", "PAYLOAD_KEYS"):
        assert name in last
