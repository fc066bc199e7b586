"""Console: the A/B template variant report.

The same numbers as ``GET /reports/variants`` (``api/services/variant_report.py``), for case
managers, operators and admins, with a link to the CSV. Filters: a milestone and a window of
days (``from`` and ``to``, both inclusive, UTC); a bad filter value is ignored and said so.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import SessionDep, SettingsDep
from api.routes.console import SignedIn, error_page, render
from api.services import variant_report as svc
from core.settings import Role
from notifications.milestones import CLIENT_MESSAGES, Milestone
from notifications.variants import all_variant_sets

router = APIRouter(prefix="/console", include_in_schema=False)

READERS = frozenset({Role.CASE_MANAGER, Role.OPERATOR, Role.ADMIN})
Text = Annotated[str | None, Query(max_length=60)]


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@router.get("/reports/variants")
async def variants_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: SignedIn,
    milestone: Text = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> Response:
    """Per milestone and variant: sent, delivered, opened, clicked and the client's next
    action, rates as ``42% (35-49%)``, and whether a difference can be called yet."""
    if user.role not in READERS:
        return error_page(
            request,
            user,
            403,
            f"Your role ({user.role.value.replace('_', ' ')}) may not see the variant report.",
        )
    problems: list[str] = []
    chosen: str | None = None
    if milestone:
        try:
            chosen = Milestone(milestone).value
        except ValueError:
            problems.append("That milestone is unknown; showing every milestone.")
    start, end = _day(date_from), _day(date_to)
    if date_from and start is None:
        problems.append("The start day is not a date (YYYY-MM-DD); it was left out.")
    if date_to and end is None:
        problems.append("The end day is not a date (YYYY-MM-DD); it was left out.")
    if start is not None and end is not None and start > end:
        problems.append("The start day is after the end day; the days were left out.")
        start = end = None
    since = datetime.combine(start, datetime.min.time(), UTC) if start is not None else None
    until = None
    if end is not None and end < date.max:
        until = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
    report = await svc.build_report(
        session, milestone=chosen, since=since, until=until, settings=settings
    )
    query = {
        k: v
        for k, v in (
            ("milestone", chosen),
            ("since", since.isoformat() if since else None),
            ("until", until.isoformat() if until else None),
        )
        if v
    }
    with_variants = all_variant_sets()
    choices: list[str] = [m.value for m in CLIENT_MESSAGES if m.value in with_variants]
    choices += [m for m in with_variants if m not in choices]
    notes = {n.milestone: n.note for n in report.notes}
    groups = [
        (name, [r for r in report.rows if r.milestone == name], notes[name])
        for name in dict.fromkeys(n.milestone for n in report.notes)
    ]
    return render(
        request,
        "variants.html",
        {
            "nav": "reports",
            "report": report,
            "groups": groups,
            "milestones": choices,
            "chosen": chosen,
            "date_from": start.isoformat() if start else "",
            "date_to": end.isoformat() if end else "",
            "problems": problems,
            "csv_url": "/reports/variants.csv" + (f"?{urlencode(query)}" if query else ""),
            "percent": svc.percent,
            "duration": svc.duration,
            "min_sent": svc.MIN_SENT,
            "descriptions": {name: dict(vs.descriptions) for name, vs in with_variants.items()},
        },
        user=user,
    )
