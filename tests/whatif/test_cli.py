"""``onboarding whatif``: the table a person reads, the JSON, and the refusals."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.whatif import main
from core.settings import Settings
from store.db import SessionFactory
from tests.whatif.helpers import (
    HISTORY_CSV,
    SHIPPED,
    Raw,
    as_type,
    cut_compliance,
    insert_history,
    renamed,
    stage,
    write_draft,
)


def whatif(settings: Settings, *argv: str, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["whatif", *argv], settings=settings, out=out, **kwargs)
    return code, out.getvalue()


def from_csv(draft: Path, *more: str) -> list[str]:
    return [
        "--case-type",
        "client_onboarding",
        "--playbook",
        str(draft),
        "--history",
        str(HISTORY_CSV),
        *more,
    ]


def test_prints_the_changed_cases_and_the_totals(tmp_path: Path, whatif_settings: Settings) -> None:
    draft = write_draft(tmp_path, cut_compliance)
    code, text = whatif(whatif_settings, *from_csv(draft))
    assert code == 0, text
    version = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["version"]
    assert f"What-if: client_onboarding, draft {version} against {version} in service" in text
    assert "History: 14 case(s), 82 stage interval(s), created 2026-03-02 … 2026-04-02" in text
    assert "Changed: 4 of 14 case(s): route 0, SLA outcome 4 (4 interval(s))" in text
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("WI-")]
    assert listed == ["WI-02", "WI-03", "WI-06", "WI-08"]
    assert "WI-02  compliance_review: met → breached (5h of 4h, 24/7)" in text
    (row,) = (line for line in text.splitlines() if line.startswith("compliance_review"))
    assert row.split()[1:6] == ["15", "5", "→", "9", "+4"]
    assert "8h → 4h" in row


def test_limit_and_the_total(tmp_path: Path, whatif_settings: Settings) -> None:
    draft = write_draft(tmp_path, cut_compliance)
    code, text = whatif(whatif_settings, *from_csv(draft, "--limit", "2"))
    assert code == 0
    assert [line.split()[0] for line in text.splitlines() if line.startswith("WI-")] == [
        "WI-02",
        "WI-03",
    ]
    assert "… 2 more changed case(s)" in text


def test_json(tmp_path: Path, whatif_settings: Settings) -> None:
    draft = write_draft(tmp_path, cut_compliance)
    code, text = whatif(whatif_settings, *from_csv(draft, "--json", "--limit", "3"))
    assert code == 0
    data = json.loads(text)
    assert data["source"] == str(HISTORY_CSV)
    assert data["changed_total"] == 4 and data["cases"] == 14
    assert [c["case_ref"] for c in data["changed"]] == ["WI-02", "WI-03", "WI-06"]
    compliance = next(s for s in data["stages"] if s["stage"] == "compliance_review")
    assert (compliance["breaches_before"], compliance["breaches_after"]) == (5, 9)


def test_since(tmp_path: Path, whatif_settings: Settings) -> None:
    """Cases created on or after 6 March: WI-11 to WI-14, whose reviews were all too long."""
    draft = write_draft(tmp_path, cut_compliance)
    code, text = whatif(whatif_settings, *from_csv(draft, "--since", "2026-03-06", "--json"))
    assert code == 0
    data = json.loads(text)
    assert data["cases"] == 4 and data["changed_total"] == 0
    assert data["since"] == "2026-03-06T00:00:00+00:00"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda raw: stage(raw, "compliance_review").update(calendar="moon_hours"),
            "unknown calendar 'moon_hours'",
        ),
        (
            lambda raw: stage(raw, "compliance_review").update(sla="soon"),
            "stages[2].sla",
        ),
        (
            lambda raw: stage(raw, "security_review").update(
                when={"field": "nowhere.field", "eq": 1}
            ),
            "'nowhere.field' is not client.<field>",
        ),
        (
            lambda raw: stage(raw, "security_review")["elements"][0].update(case_type="ghost"),
            "unknown case type 'ghost'",
        ),
        (lambda raw: raw.update(name="something_else"), "needs a draft of client_onboarding"),
    ],
    ids=["calendar", "sla", "condition", "subprocess", "other-type"],
)
def test_an_invalid_draft_prints_its_problems_and_exits_1(
    tmp_path: Path, whatif_settings: Settings, mutate: Any, expected: str
) -> None:
    draft = write_draft(tmp_path, mutate)
    code, text = whatif(whatif_settings, *from_csv(draft))
    assert code == 1
    assert text.startswith("The draft is not valid (")
    assert expected in text
    assert "Changed:" not in text


def test_a_draft_that_is_not_yaml(tmp_path: Path, whatif_settings: Settings) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text("name: [unclosed\n", encoding="utf-8")
    code, text = whatif(whatif_settings, *from_csv(draft))
    assert code == 1 and "not valid YAML (line" in text
    code, text = whatif(whatif_settings, *from_csv(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in text


def test_a_draft_calendar_folder(tmp_path: Path, whatif_settings: Settings) -> None:
    """``--calendars`` adds draft calendars: a round-the-clock desk on weekdays only."""
    folder = tmp_path / "calendars"
    folder.mkdir()
    (folder / "weekdays.calendar.yaml").write_text(
        "name: weekdays\ntime_zone: Europe/London\nhours:\n"
        + "".join(f"  {d}: ['00:00-24:00']\n" for d in ("mon", "tue", "wed", "thu", "fri")),
        encoding="utf-8",
    )

    def on_weekdays(raw: Raw) -> None:
        stage(raw, "compliance_review")["calendar"] = "weekdays"

    draft = write_draft(tmp_path, on_weekdays)
    code, text = whatif(whatif_settings, *from_csv(draft))
    assert code == 1 and "unknown calendar 'weekdays'" in text
    code, text = whatif(whatif_settings, *from_csv(draft, "--calendars", str(folder), "--json"))
    assert code == 0, text
    # WI-11: Friday 16:00 to Monday 10:00 is 18h of weekdays: still over 8h
    assert json.loads(text)["changed_total"] == 0


def test_an_unreadable_history_exits_1(
    tmp_path: Path, whatif_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = write_draft(tmp_path, cut_compliance)
    bad = tmp_path / "history.csv"
    bad.write_text(HISTORY_CSV.read_text().replace("2026-03-02T10:00:00+00:00", "soon", 1))
    code, text = whatif(
        whatif_settings,
        "--case-type",
        "client_onboarding",
        "--playbook",
        str(draft),
        "--history",
        str(bad),
    )
    assert code == 1 and text == ""
    assert "nothing was read" in capsys.readouterr().err


async def test_from_the_history_table(
    tmp_path: Path, whatif_settings: Settings, sessions: SessionFactory, database_url: str
) -> None:
    """The default source: ``history_intervals``, only the case type asked for."""
    name = f"whatif_cli_{uuid.uuid4().hex[:8]}"
    await insert_history(sessions, as_type(name))
    draft = write_draft(tmp_path, renamed(name, cut_compliance))
    argv = ["--case-type", name, "--playbook", str(draft), "--json"]
    code, text = await asyncio.to_thread(whatif, whatif_settings, *argv, database_url=database_url)
    assert code == 0, text
    data = json.loads(text)
    assert data["source"] == "history_intervals"
    assert data["cases"] == 14 and data["current_version"] is None
    prefix = name[-8:].upper()
    assert [c["case_ref"] for c in data["changed"]] == [
        f"{prefix}-WI-02",
        f"{prefix}-WI-03",
        f"{prefix}-WI-06",
        f"{prefix}-WI-08",
    ]


def test_no_history_of_the_type(tmp_path: Path, whatif_settings: Settings) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(HISTORY_CSV.read_text().splitlines()[0] + "\n")
    draft = write_draft(tmp_path, cut_compliance)
    code, text = whatif(
        whatif_settings,
        "--case-type",
        "client_onboarding",
        "--playbook",
        str(draft),
        "--history",
        str(empty),
    )
    assert code == 0
    assert "Changed: 0 of 0 case(s)" in text
    assert "No recorded case of client_onboarding" in text
