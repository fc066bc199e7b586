"""Console: what-if over case history for an uploaded draft case type.

``GET /console/whatif`` is the form (case type, the draft YAML as a file, cases created since
a day); ``POST /console/whatif`` validates the draft exactly as the registry would load it
next to the case types in service, replays the recorded stage timings of past cases from
``history_intervals`` against it (``analytics.whatif``) and shows the cases whose route or SLA
outcome would change and the totals per stage. A pure computation over history: no case and
no workflow is touched. Case managers, operators and admins; the console's rules otherwise (a
signed-in user, the role checked here, a CSRF token). Whatever is wrong with the upload (too
large, not UTF-8, not YAML, an invalid case type) is shown on the page, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from analytics.whatif import WhatIfReport, check_draft, duration, pin_calendars, whatif
from api.deps import Caller, CaseTypesDep, SessionDep, SettingsDep
from api.routes.console import SignedIn, error_page, render
from api.web import console_service as console
from core.settings import Role, Settings
from playbooks.registry import CaseTypeRegistry
from schemas.casetype import CaseType
from schemas.history import StageInterval
from store.history import load
from store.models import HistoryInterval

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)

READERS = frozenset({Role.CASE_MANAGER, Role.OPERATOR, Role.ADMIN})
MAX_DRAFT_BYTES = 256 * 1024
MAX_BODY_BYTES = MAX_DRAFT_BYTES + 16 * 1024  # the draft plus the form's other fields
SHOWN = 100  # changed cases listed on the page (the total is always given)
MAX_CASE_TYPES = 200
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


async def _case_types(session: SessionDep, registry: CaseTypeRegistry) -> list[str]:
    """The case types in service and those with recorded history (an imported history may be
    of a type not, or no longer, in service)."""
    recorded = (
        await session.scalars(select(HistoryInterval.case_type).distinct().limit(MAX_CASE_TYPES))
    ).all()
    return sorted(set(registry.names()) | set(recorded))


def _page(
    request: Request,
    user: Caller,
    *,
    case_types: list[str],
    chosen: str | None = None,
    since: str = "",
    problems: list[str] | None = None,
    report: WhatIfReport | None = None,
    filename: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "whatif.html",
        {
            "nav": "whatif",
            "case_types": case_types,
            "chosen": chosen,
            "since": since,
            "problems": problems or [],
            "report": report,
            "filename": filename,
            "shown": report.changed[:SHOWN] if report is not None else [],
            "max_kib": MAX_DRAFT_BYTES // 1024,
            "span": duration,
        },
        user=user,
        status_code=status_code,
    )


def _refused(request: Request, user: Caller) -> HTMLResponse:
    return error_page(
        request,
        user,
        403,
        f"Your role ({user.role.value.replace('_', ' ')}) may not run a what-if.",
    )


@router.get("/whatif", response_class=HTMLResponse)
async def whatif_form(
    request: Request, session: SessionDep, registry: CaseTypesDep, user: SignedIn
) -> Response:
    """The form: which case type, the draft, since when."""
    if user.role not in READERS:
        return _refused(request, user)
    return _page(request, user, case_types=await _case_types(session, registry))


def _since(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)


def _uses_aliases(data: bytes) -> bool:
    """Whether the YAML uses an alias. YAML that does not parse has none we could see: the
    registry's own reading then reports it, with line and column."""
    try:
        return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(data))
    except yaml.YAMLError:
        return False


def _check(
    data: bytes,
    filename: str,
    case_type: str,
    registry: CaseTypeRegistry,
    settings: Settings,
) -> tuple[CaseType | None, dict[str, Any], list[str]]:
    """The registry's validation of the upload (written to a private temporary folder, as
    the registry reads files). YAML aliases are refused first: an upload is not a file the
    team reviewed, and aliases let a few KiB expand into a huge document."""
    if _uses_aliases(data):
        return (
            None,
            {},
            [f"the uploaded draft ({filename}): YAML aliases (*name) are not accepted here"],
        )
    with tempfile.TemporaryDirectory(prefix="whatif-") as folder:
        path = Path(folder) / "draft.yaml"
        path.write_bytes(data)
        check = check_draft(
            path,
            registry,
            expected_name=case_type,
            staff_roles=set(settings.staff_directory),
            label=f"the uploaded draft ({filename})",
        )
    return check.case_type, dict(check.calendars), check.problems


def _compute(
    draft: CaseType,
    definitions: dict[str, Any],
    intervals: list[StageInterval],
    current: CaseType | None,
) -> WhatIfReport:
    calendars = pin_calendars(draft, definitions, intervals)
    return whatif(intervals, draft, calendars, current=current)


@router.post("/whatif", response_class=HTMLResponse)
async def whatif_run(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    registry: CaseTypesDep,
    user: SignedIn,
) -> Response:
    """Validate the uploaded draft, replay the history against it, show the report."""
    if user.role not in READERS:
        return _refused(request, user)
    case_types = await _case_types(session, registry)
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return _page(
            request,
            user,
            case_types=case_types,
            problems=[f"The draft is too large: {MAX_DRAFT_BYTES // 1024} KiB at most."]
            if length.isdigit()
            else ["The upload did not say how large it is; send it from the form."],
            status_code=413 if length.isdigit() else 411,
        )
    try:
        form = await request.form(max_files=1, max_fields=10)
    except MultiPartException as e:
        return _page(
            request,
            user,
            case_types=case_types,
            problems=[f"The form could not be read: {e.message}"],
            status_code=400,
        )
    try:
        if not console.csrf_ok(request, form.get("csrf_token")):
            return error_page(
                request, user, 400, "The form expired. Go back, reload the page and try again."
            )
        raw_type = form.get("case_type")
        chosen = raw_type.strip() if isinstance(raw_type, str) else ""
        raw_since = form.get("since")
        since_text = raw_since.strip() if isinstance(raw_since, str) else ""
        problems: list[str] = []
        if not _KEY.match(chosen):
            problems.append("Choose a case type.")
        since: datetime | None = None
        if since_text:
            try:
                since = _since(since_text)
            except ValueError:
                problems.append("The day to start from is not a date (YYYY-MM-DD).")
        upload = form.get("draft")
        too_large = False
        data = b""
        filename = "draft.yaml"
        if not isinstance(upload, UploadFile) or not upload.filename:
            problems.append("Choose the draft case type file (YAML) to upload.")
        else:
            filename = Path(upload.filename).name[:100] or filename
            data = await upload.read(MAX_DRAFT_BYTES + 1)
            if len(data) > MAX_DRAFT_BYTES:
                problems.append(f"The draft is too large: {MAX_DRAFT_BYTES // 1024} KiB at most.")
                too_large = True
            elif not data.strip():
                problems.append("The uploaded draft is empty.")
            else:
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    problems.append("The draft is not UTF-8 text (a YAML file is).")
        context: dict[str, Any] = {
            "case_types": case_types,
            "chosen": chosen or None,
            "since": since_text[:10],
            "filename": filename,
        }
        if problems:
            status = 413 if too_large else 422
            return _page(request, user, problems=problems, status_code=status, **context)
        draft, definitions, problems = await asyncio.to_thread(
            _check, data, filename, chosen, registry, settings
        )
        if draft is None:
            return _page(request, user, problems=problems, status_code=422, **context)
        intervals = await load(session, case_type=draft.name, since=since)
        current = registry.get(draft.name) if draft.name in registry else None
        report = await asyncio.to_thread(_compute, draft, definitions, intervals, current)
        log.info(
            "console whatif case_type=%s cases=%d changed=%d actor=%s",
            draft.name,
            report.cases,
            report.cases_changed,
            user.label,
        )
        return _page(request, user, report=report, **context)
    except Exception:
        log.exception("console whatif failed")
        return _page(
            request,
            user,
            case_types=case_types,
            problems=["The what-if failed unexpectedly (it was logged); nothing was changed."],
            status_code=500,
        )
    finally:
        await form.close()
