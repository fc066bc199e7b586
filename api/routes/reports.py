"""Reports: A/B template variants (JSON and CSV).

``GET /reports/variants`` and ``GET /reports/variants.csv`` take the same filters and give the
same numbers; what is counted is described in ``api/services/variant_report.py`` and
docs/notifications.md ("A/B variants"). Case managers, operators and admins may read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response

from api.deps import Caller, SessionDep, SettingsDep, require
from api.responses import errors
from api.services import variant_report as svc
from core.settings import Role
from notifications.milestones import Milestone

router = APIRouter(prefix="/reports", tags=["reports"])

Reader = Annotated[Caller, Depends(require(Role.CASE_MANAGER, Role.OPERATOR))]
"""Who may read the variant report (admin passes every role check)."""
MilestoneQ = Annotated[Milestone | None, Query(description="Only this milestone")]
SinceQ = Annotated[
    datetime | None,
    Query(description="Messages sent at or after this time (ISO 8601; no zone: UTC)"),
]
UntilQ = Annotated[
    datetime | None,
    Query(description="Messages sent before this time (ISO 8601; no zone: UTC)"),
]
READ = errors(401, 403, 422, 503)
CSV_MEDIA_TYPE = "text/csv"


def _bad_window(name: str, msg: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", name], "msg": msg, "type": "value_error"}],
    )


def window(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The window in UTC; 422 for an empty or backwards one, or a time UTC cannot hold."""
    bounds: dict[str, datetime | None] = {"since": since, "until": until}
    for name, value in bounds.items():
        if value is not None:
            try:
                bounds[name] = svc.as_utc(value)
            except OverflowError:
                raise _bad_window(name, "the time is out of range in UTC") from None
    start, end = bounds["since"], bounds["until"]
    if start is not None and end is not None and start >= end:
        raise _bad_window("since", "'since' must be before 'until' (the window is [since, until))")
    return start, end


@router.get("/variants", response_model=svc.VariantReport, responses=READ)
async def variant_report(
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    milestone: MilestoneQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> svc.VariantReport:
    """Per (milestone, variant): client emails sent, delivered, opened and clicked, the
    client's next action and its median delay; each rate with its 95% Wilson interval, and a
    note per milestone (too few to call, or whether the intervals overlap)."""
    since, until = window(since, until)
    return await svc.build_report(
        session,
        milestone=milestone.value if milestone is not None else None,
        since=since,
        until=until,
        settings=settings,
    )


@router.get(
    "/variants.csv",
    response_class=Response,
    responses={
        200: {
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "The report's rows as CSV, a header row first",
        },
        **READ,
    },
)
async def variant_report_csv(
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    milestone: MilestoneQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> Response:
    """The same report as CSV: one line per (milestone, variant); rates as fractions (0 to 1)
    with their interval bounds, the median delay in seconds, and the notes."""
    since, until = window(since, until)
    report = await svc.build_report(
        session,
        milestone=milestone.value if milestone is not None else None,
        since=since,
        until=until,
        settings=settings,
    )
    name = f"variants-{milestone.value}.csv" if milestone is not None else "variants.csv"
    return Response(
        content=svc.to_csv(report),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
