"""The ``notify-preview`` subcommand's parser and output."""

from __future__ import annotations

import argparse

import pytest

from notifications import SMS_MAX_CHARS, Milestone, preview, render, sample_context


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="onboarding")
    subparsers = parser.add_subparsers(dest="command", required=True)
    preview.add_parser(subparsers)
    args = parser.parse_args(list(argv))
    assert args.func is preview.run  # cli.main dispatches with args.func(args)
    return args


def test_text_is_default(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("notify-preview", "documents_needed")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    expected = render(Milestone.DOCUMENTS_NEEDED, sample_context(Milestone.DOCUMENTS_NEEDED))
    assert out.startswith(f"Subject: {expected.subject}\n\n")
    assert expected.text in out
    assert "ONB-2025-000123" in out
    assert "Next steps:" in out


def test_html(capsys: pytest.CaptureFixture[str]) -> None:
    assert preview.run(parse("notify-preview", "welcome_package", "--format", "html")) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!DOCTYPE html>")
    assert "Daniel Okafor" in out


def test_sms(capsys: pytest.CaptureFixture[str]) -> None:
    assert preview.run(parse("notify-preview", "setup_completed", "--format", "sms")) == 0
    out = capsys.readouterr().out.strip()
    assert "4821" in out
    assert "ONB-2025-000123" in out
    assert len(out) <= SMS_MAX_CHARS


def test_branding_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        "notify-preview",
        "case_created",
        "--format",
        "html",
        "--brand-name",
        "Fjord Bank",
        "--brand-color",
        "#123456",
    )
    assert preview.run(args) == 0
    out = capsys.readouterr().out
    assert "Fjord Bank" in out
    assert "#123456" in out


def test_bad_brand_colour_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("notify-preview", "case_created", "--brand-color", "blue")
    assert preview.run(args) == 2
    assert "invalid branding" in capsys.readouterr().err


def test_staff_notice_has_no_sms(capsys: pytest.CaptureFixture[str]) -> None:
    assert preview.run(parse("notify-preview", "sla_breached", "--format", "sms")) == 2
    assert "staff notice" in capsys.readouterr().err


def test_staff_notice_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert preview.run(parse("notify-preview", "sla_escalated")) == 0
    out = capsys.readouterr().out
    assert out.startswith("Subject: [SLA escalated L2] ONB-2025-000123")


def test_unknown_milestone_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("notify-preview", "nope")
    assert "invalid choice" in capsys.readouterr().err
