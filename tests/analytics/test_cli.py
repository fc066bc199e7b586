"""``onboarding eta`` and ``onboarding risk`` through their modules (before cli.main wires
them): files in, CSV or scores out, problems with line numbers."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import pytest

from cli import eta as eta_cli
from cli import risk as risk_cli
from schemas.history import CREATION_COLUMNS, write_csv


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, history, generate) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("eta-cli")
    paths = {"history": folder / "history.csv", "small": folder / "small.csv"}
    with paths["history"].open("w", newline="") as f:
        write_csv(f, history)
    with paths["small"].open("w", newline="") as f:
        write_csv(f, generate(40, 8))
    rows: list[list[str]] = []
    seen: set[str] = set()
    for iv in history:
        if iv.case_ref not in seen and len(rows) < 25:
            seen.add(iv.case_ref)
            rows.append(iv.as_row()[: len(CREATION_COLUMNS)])
    paths["facts"] = folder / "facts.csv"
    with paths["facts"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CREATION_COLUMNS)
        writer.writerows(rows)
    return paths


@pytest.fixture(scope="module")
def fitted(files, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``eta fit PATH --out FILE``: the model file and what the command printed."""
    out = tmp_path_factory.mktemp("eta-model") / "eta.model"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert eta_cli.main(["eta", "fit", str(files["history"]), "--out", str(out)]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def model_file(fitted) -> Path:
    return fitted[0]


def test_predict_writes_one_row_per_case_in_order(files, model_file, capsys):
    capsys.readouterr()
    code = eta_cli.main(["eta", "predict", str(files["facts"]), "--model", str(model_file)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert rows[0] == ["case_ref", "predicted_completed_at", "p10", "p90"]
    wanted = [r[0] for r in csv.reader(files["facts"].open())][1:]
    assert [r[0] for r in rows[1:]] == wanted and len(wanted) == 25
    for _, p50, p10, p90 in rows[1:]:
        assert p10 <= p50 <= p90  # ISO times in UTC sort as text
    assert "basis=budgets" not in captured.err


def test_fit_prints_holdout_scores(fitted):
    model_file, out = fitted
    assert model_file.stat().st_size > 1000
    assert "within ±4 h" in out and "baseline (segment median)" in out
    assert "written to" in out


def test_predict_problems_have_line_numbers_and_nothing_is_written(files, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    good = files["facts"].read_text().splitlines()
    bad.write_text(
        "\n".join([good[0], good[1], good[2].replace(",GB,", ",Britain,"), good[3]]) + "\n"
    )
    capsys.readouterr()
    assert eta_cli.main(["eta", "predict", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 3: country 'Britain'" in captured.err or "line 3:" in captured.err


def test_an_unknown_case_type_is_a_problem_with_its_line(files, model_file, tmp_path, capsys):
    lines = files["facts"].read_text().splitlines()
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "\n".join([lines[0], lines[1], lines[2].replace("client_onboarding", "mystery")]) + "\n"
    )
    capsys.readouterr()
    assert eta_cli.main(["eta", "predict", str(odd), "--model", str(model_file)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 3: case type 'mystery' is unknown" in captured.err


def test_too_little_history_says_the_estimate_is_from_budgets(files, tmp_path, capsys):
    small = tmp_path / "small.model"
    assert eta_cli.main(["eta", "fit", str(files["small"]), "--out", str(small)]) == 0
    capsys.readouterr()
    code = eta_cli.main(["eta", "predict", str(files["facts"]), "--model", str(small)])
    captured = capsys.readouterr()
    assert code == 0
    assert len(captured.out.splitlines()) == 26
    assert "25 case(s) of client_onboarding estimated from the SLA budgets" in captured.err
    assert "basis=budgets" in captured.err


def test_evaluate_prints_model_and_baseline(files, capsys):
    assert eta_cli.main(["eta", "evaluate", str(files["history"]), "--holdout", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "model (p50)" in out and "baseline (segment median)" in out and "MAE" in out


def test_a_broken_history_file_is_refused_with_line_numbers(tmp_path, capsys):
    broken = tmp_path / "broken.csv"
    broken.write_text("case_ref,nope\nA,1\n")
    assert eta_cli.main(["eta", "evaluate", str(broken)]) == 1
    assert "line 1: the header must be exactly" in capsys.readouterr().err


def test_risk_evaluate_prints_both_methods(files, capsys):
    assert risk_cli.main(["risk", "evaluate", str(files["history"]), "--holdout", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "model (P >= 0.5)" in out and "rule (60% gone, < 40% tasks done)" in out
    assert "document_collection" in out
