"""The JSON log line, unit by unit: fields, case context, redaction (core/logging.py)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from core import logging as obs_logging
from core.logging import (
    add_secrets,
    bind_case_ref,
    json_formatter,
    quiet_temporal_messages,
    request_log_context,
    secret_values,
)
from tests.conftest import test_settings


def line(message: str, *args: Any, level: int = logging.INFO, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord("t.logger", level, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return dict(json.loads(json_formatter().format(record)))


def test_a_line_is_one_json_object_with_time_level_logger_and_message():
    out = line("worker started task_queue=%s", "q")
    assert list(out)[:4] == ["ts", "level", "logger", "event"]
    assert out["level"] == "info" and out["logger"] == "t.logger"
    assert out["event"] == "worker started task_queue=q"
    assert out["ts"].endswith("+00:00")


def test_workflow_logger_lines_carry_the_case_workflow_and_run():
    out = line(
        "stage entered",
        temporal_workflow={
            "workflow_id": "onboarding-ACME-0001",
            "run_id": "r-1",
            "workflow_type": "CaseWorkflow",
            "namespace": "default",
            "task_queue": "onboarding",
            "attempt": 1,
        },
    )
    assert out["case_ref"] == "ACME-0001"
    assert (out["workflow_id"], out["run_id"], out["workflow_type"]) == (
        "onboarding-ACME-0001",
        "r-1",
        "CaseWorkflow",
    )
    assert "temporal_workflow" not in out


def test_activity_logger_lines_carry_the_activity_and_its_workflow():
    out = line(
        "notify sent case=ACME-0002 key=k",
        temporal_activity={
            "activity_type": "notify",
            "workflow_id": "onboarding-ACME-0002",
            "workflow_run_id": "r-2",
        },
    )
    assert (out["case_ref"], out["workflow_id"], out["run_id"], out["activity"]) == (
        "ACME-0002",
        "onboarding-ACME-0002",
        "r-2",
        "notify",
    )


def test_bound_context_and_request_path_give_the_case():
    with structlog.contextvars.bound_contextvars(case_ref="BOUND-1", workflow_id="w"):
        assert line("x")["case_ref"] == "BOUND-1"
    with request_log_context({"path_params": {"ref": "PATH-1"}}):
        assert line("x")["case_ref"] == "PATH-1"
    with request_log_context({"path_params": {}}):
        bind_case_ref("NEW-1")
        assert line("x")["case_ref"] == "NEW-1"
    assert "case_ref" not in line("nothing about a case")
    assert line("document stored case=DOC-7 id=1")["case_ref"] == "DOC-7"


def test_secrets_of_the_settings_never_show(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(obs_logging, "_SECRETS", set())
    settings = test_settings(
        sendgrid_api_key=SecretStr("SG.abcdefgh-secret"),
        api_keys={"live-client-key-123": "client_app"},
        database_url=SecretStr("postgresql+asyncpg://app:db-password-42@db/onboarding"),
        metrics_token=SecretStr("scrape-token-xyz"),
    )
    values = secret_values(settings)
    assert {"SG.abcdefgh-secret", "live-client-key-123", "db-password-42"} <= set(values)
    add_secrets(values)
    out = line(
        "sent with %s by %s to db %s, scraped with %s",
        "SG.abcdefgh-secret",
        "live-client-key-123",
        "postgresql+asyncpg://app:db-password-42@db/onboarding",
        "scrape-token-xyz",
    )
    for value in ("SG.abcdefgh-secret", "live-client-key-123", "db-password-42", "scrape-token"):
        assert value not in json.dumps(out)
    assert out["event"].count("***") == 4


def test_pii_patterns_field_names_and_path_tokens_are_masked():
    out = line(
        "mail to ada.lovelace@example.com, sms to +447700900123, link /portal/eyJhbGciOi.x.y/docs"
    )
    assert out["event"] == "mail to a***@example.com, sms to ***0123, link /portal/***/docs"
    assert line("inbound POST /inbound/email/s3cr3t-token")["event"].endswith("/inbound/email/***")
    masked = line("x", http={"authorization": "Bearer abc", "route": "/cases"})
    assert masked["http"] == {"authorization": "***", "route": "/cases"}


def test_exceptions_are_one_field_of_the_same_line():
    try:
        raise ValueError("bad value for ada@example.com")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(json_formatter().format(record))
    assert "ValueError" in out["exception"] and "ada@example.com" not in out["exception"]


def test_temporal_loggers_stay_replay_safe_and_lose_the_appended_dict():
    from temporalio import activity, workflow

    quiet_temporal_messages()
    assert workflow.logger.log_during_replay is False  # records are dropped during replay
    assert workflow.logger.workflow_info_on_extra and not workflow.logger.workflow_info_on_message
    assert activity.logger.activity_info_on_extra and not activity.logger.activity_info_on_message
