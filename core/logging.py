"""Structured logs: one JSON object per line on stderr, for every process.

Every log record, ours (stdlib ``logging`` or ``structlog``) and our libraries' (uvicorn,
temporalio, the Temporal Core SDK forwarded by ``core/telemetry.py``, SQLAlchemy, Python
warnings), goes through one structlog ``ProcessorFormatter``, which adds:

- ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (the message);
- ``case_ref``, ``workflow_id``, ``run_id`` wherever they are known: bound per activity by
  ``workers/interceptors.py``, taken from ``workflow.logger``'s and ``activity.logger``'s
  own context, from the request's path (``/cases/{ref}/…``) or from a ``case=<ref>`` in the
  message;
- ``trace_id``/``span_id`` of the current OpenTelemetry span (``core/tracing.py``);

and then redacts: the values of known secret settings (``add_secrets``), fields whose name
says secret (password, token, api_key, …), e-mail addresses and phone numbers (the first
character and the domain, or the last four digits, are kept), and the tokens in portal and
inbound-email paths. Call sites still must not log client names: no pattern finds a name.

The workflow logger (``workflow.logger``) stays replay-safe: temporalio drops its records
while a workflow replays; this module only formats what it lets through.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

if TYPE_CHECKING:
    from core.settings import Settings

NOISY_LOGGERS = ("httpx", "httpcore", "sqlalchemy.engine", "asyncio", "python_http_client")
MIN_SECRET_LENGTH = 8
"""Shorter values are not masked: a short "secret" would blank common words."""
MASK = "***"
WORKFLOW_ID_PREFIX = "onboarding-"  # schemas.case.workflow_id_for

_SECRETS: set[str] = set()
_SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authori[sz]ation|cookie|credential|private[_-]?key",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+*-])([\w+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PHONE = re.compile(r"(?<![\w+])\+\d{4,11}(\d{4})\b")
_TOKEN_PATH = re.compile(r"(/(?:portal|inbound/email)/)[^/\s?#\"'<>]+")
_CASE_IN_MESSAGE = re.compile(r"\bcase=([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})")
_OWN_FIELDS = frozenset({"event", "level", "logger", "ts", "exception", "stack"})

_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("log_request", default=None)
"""The current HTTP request's log context: its ASGI scope (path parameters once routed),
and anything a handler learned (``bind_case_ref``)."""


# ====================================================================== public helpers
def add_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values wherever they appear in a log line (process-wide)."""
    _SECRETS.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)


def secret_values(settings: Settings) -> list[str]:
    """Every secret a process holds: ``SecretStr`` settings, the API keys themselves (they
    are dict keys), console password hashes, each payload key, the database password and
    the Temporal API key."""
    import os

    from pydantic import SecretStr
    from sqlalchemy.engine import make_url

    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
    values.extend(settings.api_keys)
    values.extend(u.password_hash.get_secret_value() for u in settings.console_users.values())
    if settings.payload_keys is not None:
        for entry in settings.payload_keys.get_secret_value().split(","):
            values.append(entry.strip().partition(":")[2])
    if settings.database_url is not None:
        with suppress(Exception):  # not a URL SQLAlchemy reads: the whole value is masked
            values.append(make_url(settings.database_url.get_secret_value()).password or "")
    values.append(os.environ.get("TEMPORAL_API_KEY", ""))
    return values


def redact_settings(settings: Settings) -> None:
    """``add_secrets`` for everything ``settings`` holds."""
    add_secrets(secret_values(settings))


@contextmanager
def request_log_context(scope: Mapping[str, Any], **known: Any) -> Iterator[dict[str, Any]]:
    """Log lines inside this block carry the request's case (``/cases/{ref}``) and trace."""
    context: dict[str, Any] = {"scope": scope, **known}
    token = _REQUEST.set(context)
    try:
        yield context
    finally:
        _REQUEST.reset(token)


def bind_case_ref(ref: str) -> None:
    """The case this request (or task) is about, for every later log line of it."""
    context = _REQUEST.get()
    if context is not None:
        context["case_ref"] = ref
    else:
        structlog.contextvars.bind_contextvars(case_ref=ref)


def case_ref_of_workflow(workflow_id: str | None) -> str | None:
    if workflow_id and workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return workflow_id[len(WORKFLOW_ID_PREFIX) :]
    return None


# ====================================================================== processors
def _basics(_: WrappedLogger, method: str, ed: EventDict) -> EventDict:
    record: logging.LogRecord | None = ed.get("_record")
    created = record.created if record is not None else datetime.now(UTC).timestamp()
    ed.setdefault("ts", datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"))
    level = record.levelname if record is not None else method
    ed["level"] = "warning" if level.lower() == "warn" else level.lower()
    if record is not None:
        ed.setdefault("logger", record.name)
    return ed


def _temporal_context(_: WrappedLogger, __: str, ed: EventDict) -> EventDict:
    """``workflow.logger``/``activity.logger`` put their context on the record's extra."""
    record = ed.get("_record")
    activity = getattr(record, "temporal_activity", None)
    workflow = getattr(record, "temporal_workflow", None)
    if isinstance(activity, Mapping):
        ed.setdefault("workflow_id", activity.get("workflow_id"))
        ed.setdefault("run_id", activity.get("workflow_run_id"))
        ed.setdefault("activity", activity.get("activity_type"))
    elif isinstance(workflow, Mapping):
        ed.setdefault("workflow_id", workflow.get("workflow_id"))
        ed.setdefault("run_id", workflow.get("run_id"))
        ed.setdefault("workflow_type", workflow.get("workflow_type"))
    for key in ("temporal_activity", "temporal_workflow", "temporal_update"):
        ed.pop(key, None)
    return ed


def _case_ref(_: WrappedLogger, __: str, ed: EventDict) -> EventDict:
    request = _REQUEST.get()
    if request is not None:
        if not ed.get("case_ref"):
            params = request["scope"].get("path_params") or {}
            ref = request.get("case_ref") or params.get("ref")
            if isinstance(ref, str):
                ed["case_ref"] = ref
        for key in ("trace_id", "span_id"):
            if key in request:
                ed.setdefault(key, request[key])
    if not ed.get("case_ref"):
        ref = case_ref_of_workflow(ed.get("workflow_id"))
        if ref is None and isinstance(ed.get("event"), str):
            match = _CASE_IN_MESSAGE.search(ed["event"])
            ref = match.group(1) if match else None
        if ref is not None:
            ed["case_ref"] = ref
    return {k: v for k, v in ed.items() if v is not None or k == "event"}


def _trace(_: WrappedLogger, __: str, ed: EventDict) -> EventDict:
    ids = current_trace_ids()
    if ids is not None:
        ed["trace_id"], ed["span_id"] = ids
    return ed


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current OpenTelemetry span, hex, if one is recording."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - a dependency
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def redact_text(text: str) -> str:
    """Secrets, e-mail addresses, phone numbers and path tokens masked in ``text``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _TOKEN_PATH.sub(rf"\1{MASK}", text)
    text = _EMAIL.sub(rf"\1{MASK}@\2", text)
    return _PHONE.sub(rf"{MASK}\1", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: MASK if _sensitive(k) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact_value(v) for v in value]
    return value


def _sensitive(key: Any) -> bool:
    return isinstance(key, str) and key not in _OWN_FIELDS and bool(_SENSITIVE_KEY.search(key))


def _redact(_: WrappedLogger, __: str, ed: EventDict) -> EventDict:
    for key, value in list(ed.items()):
        if key.startswith("_"):
            continue
        ed[key] = MASK if _sensitive(key) else _redact_value(value)
    return ed


def _json_default(value: Any) -> str:
    return str(value)


FIRST_FIELDS = ("ts", "level", "logger", "event", "case_ref", "workflow_id", "run_id")


def _order(_: WrappedLogger, __: str, ed: EventDict) -> EventDict:
    """The fields a reader looks for first, first."""
    ordered = {k: ed[k] for k in FIRST_FIELDS if k in ed}
    ordered.update((k, v) for k, v in ed.items() if k not in ordered)
    return ordered


EXTRA_FIELDS = ("http", "case_ref", "workflow_id", "run_id")
"""``logging`` calls may pass these as ``extra={...}``; they become fields of the line."""

PROCESSORS: list[Processor] = [
    _basics,
    structlog.stdlib.ExtraAdder(allow=EXTRA_FIELDS),
    structlog.contextvars.merge_contextvars,
    _temporal_context,
    _case_ref,
    _trace,
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    _redact,
    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
    _order,
    structlog.processors.JSONRenderer(default=_json_default, ensure_ascii=False),
]


def json_formatter() -> logging.Formatter:
    """The formatter every handler of ours uses (tests attach it to a capture handler)."""
    return structlog.stdlib.ProcessorFormatter(processors=PROCESSORS, foreign_pre_chain=[])


# ====================================================================== set-up
def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for this process; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's own handlers (if it configured any) would print plain text: ours only
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    quiet_temporal_messages()
    sys.excepthook = _log_uncaught


def quiet_temporal_messages() -> None:
    """temporalio appends its context to each message as a dict repr; we have it as fields."""
    from temporalio import activity, workflow

    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("onboarding").critical("uncaught exception", exc_info=(kind, exc, tb))


def parse_line(line: str) -> dict[str, Any]:
    """One log line back as a dict (tests, tools)."""
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("a log line is a JSON object")
    return value
