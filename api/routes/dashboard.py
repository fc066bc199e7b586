"""/dashboard (JSON) and /console/dashboard (HTML): SLA by stage, bottlenecks, automation, NPS,
straight-through processing.

Both are for staff only (``AnyStaff``). The HTML page sends a browser without a session to the
console's sign-in page instead of answering 401.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import (
    STAFF,
    AnyStaff,
    Caller,
    CaseTypesDep,
    SessionDep,
    SettingsDep,
    api_key_header,
    bearer,
    get_caller,
    require,
)
from api.responses import errors
from api.services import dashboard as svc
from api.web import dashboard_charts as charts
from playbooks.registry import CaseTypeRegistry
from schemas.enums import ClientTier, ClientType

log = logging.getLogger(__name__)

router = APIRouter(tags=["dashboard"])

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"
LOGIN_PATH = "/console/login"
CASE_PAGE = "/console/cases/"  # the console's case page; the ref is appended

FromQ = Annotated[
    date | None,
    Query(alias="from", description="First day, inclusive (ISO date). Default: 30 days ago."),
]
ToQ = Annotated[
    date | None,
    Query(alias="to", description="Last day, exclusive (ISO date). Default: tomorrow."),
]
TypeQ = Annotated[ClientType | None, Query(description="Only clients of this type")]
TierQ = Annotated[ClientTier | None, Query(description="Only clients of this tier")]
CaseTypeQ = Annotated[
    str | None,
    Query(pattern=r"^[a-z][a-z0-9_]{0,59}$", description="Only cases of this case type"),
]
WeeksQ = Annotated[
    int,
    Query(
        ge=1,
        le=svc.MAX_WEEKS,
        description="Straight-through figures by week: the window's last N ISO weeks",
    ),
]
FIRST_TYPE = "client_onboarding"


def stage_order(registry: CaseTypeRegistry, case_type: str | None) -> list[str]:
    """Stage keys in the case types' declared order: the chosen type's, or every type's
    (client onboarding first, then by name; a key shared by types keeps its first place).
    Stages no type declares are ordered after these by first appearance."""
    names = registry.names()
    if case_type is not None:
        names = [case_type] if case_type in registry else []
    elif FIRST_TYPE in names:
        names = [FIRST_TYPE, *(n for n in names if n != FIRST_TYPE)]
    order: dict[str, None] = {}
    for name in names:
        for stage in registry.get(name).stages:
            order.setdefault(stage.key, None)
    return list(order)


def _range(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Fill in the default window; 422 when it is empty or backwards."""
    default_from, default_to = svc.default_range()
    start, end = date_from or default_from, date_to or default_to
    if start >= end:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["query", "from"],
                    "msg": "'from' must be before 'to' (the window is [from, to))",
                    "type": "value_error",
                }
            ],
        )
    return start, end


@router.get("/dashboard", response_model=svc.Dashboard, responses=errors(401, 403, 422, 503))
async def dashboard_json(
    session: SessionDep,
    caller: AnyStaff,
    registry: CaseTypesDep,
    date_from: FromQ = None,
    date_to: ToQ = None,
    client_type: TypeQ = None,
    tier: TierQ = None,
    case_type: CaseTypeQ = None,
    weeks: WeeksQ = svc.DEFAULT_WEEKS,
) -> svc.Dashboard:
    """SLA compliance and active time by stage, bottlenecks, end-to-end time, cases at risk
    now, automation rate, NPS, and straight-through processing (rate, manual-gate rate and
    median time to complete, by segment and by week, beside the reference team's) over
    ``[from, to)``; optionally one case type only."""
    start, end = _range(date_from, date_to)
    return await svc.build_dashboard(
        session,
        date_from=start,
        date_to=end,
        client_type=client_type,
        tier=tier,
        case_type=case_type,
        stage_order=stage_order(registry, case_type),
        weeks=weeks,
    )


# ------------------------------------------------------------------------------- HTML
_staff_check = require(*STAFF)


async def console_staff(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller | None:
    """``AnyStaff`` for a page: the same key/session checks, but None instead of 401 so the
    route can redirect to sign-in; 403 still stands."""
    try:
        caller = get_caller(request, settings, api_key, credentials)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            return None
        raise
    return await _staff_check(caller)


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the console sign-in, coming back here (a relative path only) afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        f"{LOGIN_PATH}?{urlencode({'next': target})}", status_code=status.HTTP_303_SEE_OTHER
    )


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=False,
        lstrip_blocks=False,
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _points(value: float | None, reference: float) -> str:
    """How far a rate is from the reference, in percentage points."""
    return "-" if value is None else f"{value - reference:+.1f} pts"


SEGMENT_NAMES = {"client_type": "Client type", "tier": "Tier", "case_type": "Case type"}


def _segment_label(case_titles: dict[str, str]) -> Callable[[str, str], str]:
    """A segment's name for people: its dimension and its value (a case type's title)."""

    def label(dimension: str, value: str) -> str:
        shown = case_titles.get(value, value) if dimension == "case_type" else value.capitalize()
        return f"{SEGMENT_NAMES.get(dimension, dimension)}: {shown}"

    return label


def render_dashboard(
    d: svc.Dashboard,
    *,
    caller_label: str,
    case_types: list[tuple[str, str]] | None = None,
) -> str:
    """The dashboard page as HTML, charts drawn as inline SVG."""
    context: dict[str, Any] = {
        "d": d,
        "st": d.straight_through,
        "points": _points,
        "one_day": timedelta(days=1),
        "segment_label": _segment_label(dict(case_types or [])),
        "charts": charts.all_charts(
            d.stages, d.bottlenecks.by_active_time, d.bottlenecks.by_breaches
        ),
        "pct": _pct,
        "dur": charts.humanize_seconds,
        "label": charts.stage_label,
        "client_types": [t.value for t in ClientType],
        "case_types": case_types or [],
        "tiers": [t.value for t in ClientTier],
        "case_page": CASE_PAGE,
        "caller_label": caller_label,
    }
    return _templates().get_template("dashboard/dashboard.html").render(context)


@router.get("/console/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard_page(
    request: Request,
    session: SessionDep,
    caller: Annotated[Caller | None, Depends(console_staff)],
    registry: CaseTypesDep,
    date_from: FromQ = None,
    date_to: ToQ = None,
    client_type: Annotated[str | None, Query(max_length=40)] = None,
    tier: Annotated[str | None, Query(max_length=40)] = None,
    case_type: Annotated[str | None, Query(max_length=60)] = None,
    weeks: WeeksQ = svc.DEFAULT_WEEKS,
) -> Response:
    """The dashboard for people: filters in a GET form, charts as server-side SVG."""
    if caller is None:
        return login_redirect(request)
    start, end = _range(date_from, date_to)
    # the form sends "" for "All"; anything else must be a known value
    try:
        ctype = ClientType(client_type) if client_type else None
        ctier = ClientTier(tier) if tier else None
    except ValueError as exc:  # the message would echo the value: name the choices instead
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="unknown client type or tier; client types: "
            f"{', '.join(t.value for t in ClientType)}; tiers: "
            f"{', '.join(t.value for t in ClientTier)}",
        ) from exc
    ctype_name = case_type or None
    if ctype_name is not None and ctype_name not in registry:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="unknown case type")
    d = await svc.build_dashboard(
        session,
        date_from=start,
        date_to=end,
        client_type=ctype,
        tier=ctier,
        case_type=ctype_name,
        stage_order=stage_order(registry, ctype_name),
        weeks=weeks,
    )
    html = render_dashboard(
        d,
        caller_label=caller.name or caller.label,
        case_types=[(n, registry.get(n).title) for n in registry.names()],
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
