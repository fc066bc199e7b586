"""The A/B template variant report: per (milestone, variant), what was sent and what came of it.

What is counted (docs/notifications.md, "A/B variants"):

* one message = one ``notifications`` row on the **email** channel, to the **client**
  (``audience = client``, not an additional contact's copy), with a ``variant``, that went out
  (``status`` ``sent`` or ``local_outbox``). Email is the channel with delivery, open and click
  tracking, and every client message has at most one email row per occurrence, so this counts
  each message once. ``since``/``until`` select messages by the time they went out
  (``sent_at``, else ``created_at``): ``[since, until)``.
* delivered: ``delivered_at`` set or ``delivery_state`` delivered/opened/clicked, or opened;
  opened: ``opened_at`` set or ``delivery_state`` opened/clicked, or clicked; clicked:
  ``clicked_at`` set or ``delivery_state`` clicked. A click proves an open, an open a delivery
  (providers' events arrive out of order, and blocked images hide opens), so
  sent >= delivered >= opened >= clicked.
* rates: delivery = delivered/sent, open = opened/delivered, click = clicked/sent,
  action = with an action/sent; each with a 95% Wilson score interval.
* the client's next action: the first, after the message went out, of a document the client
  uploaded (``uploaded_by`` not staff: not a staff API key's ``<role>:<key id>``, not a console
  user, not ``system``) or a client event on the case (a message, feedback, a proposal answer,
  or anything else done as ``client``). Its median delay is over the messages followed by one.
* notes: a variant with fewer than ``MIN_SENT`` messages is too small to call; otherwise a rate
  whose intervals overlap between variants shows no clear difference yet.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Float, and_, cast, extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Role, Settings
from notifications.variants import all_variant_sets
from store.models import CaseEvent, DocumentRow, NotificationRow

SENT_STATUSES = ("sent", "local_outbox")
CLIENT_EVENT_KINDS = (
    "client_message",
    "feedback",
    "proposal_accepted",
    "proposal_rejected",
)
CLIENT_ACTOR = "client"
MIN_SENT = 30
"""Fewer messages than this in any variant of a milestone: too small to call."""
Z_95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95% interval."""

RATE_LABELS = {
    "delivery_rate": "delivery",
    "open_rate": "open",
    "click_rate": "click",
    "action_rate": "action",
}


# ---------------------------------------------------------------------- views
class Rate(BaseModel):
    """A proportion with its 95% Wilson score interval (all None when nothing to divide by)."""

    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator/denominator, 0 to 1")
    ci_low: float | None = Field(description="lower bound of the 95% Wilson score interval")
    ci_high: float | None = Field(description="upper bound of the 95% Wilson score interval")


class VariantRow(BaseModel):
    """One variant of one milestone: counts, rates and the client's next action."""

    milestone: str
    variant: str
    expected_share: float | None = Field(
        description="The variant's weight over the total in the current variants.yaml "
        "(None: no longer declared)"
    )
    sent: int = Field(description="Client emails of this variant that went out")
    delivered: int
    opened: int
    clicked: int
    delivery_rate: Rate = Field(description="delivered / sent")
    open_rate: Rate = Field(description="opened / delivered")
    click_rate: Rate = Field(description="clicked / sent")
    n_with_action: int = Field(description="Messages after which the client acted on the case")
    action_rate: Rate = Field(description="n_with_action / sent")
    median_seconds_to_action: float | None = Field(
        description="Median time from the message to the client's next action (seconds), "
        "over the messages followed by one"
    )
    too_few: bool = Field(description=f"Fewer than {MIN_SENT} sent: too small to call")
    note: str | None = None


class MilestoneNote(BaseModel):
    """What the variants of one milestone show so far, in one or two sentences."""

    milestone: str
    note: str


class VariantReport(BaseModel):
    """Per (milestone, variant) rows, and a note per milestone."""

    milestone: str | None = Field(description="The milestone asked for (None: every one)")
    since: datetime | None
    until: datetime | None
    generated_at: datetime
    min_sent: int = Field(default=MIN_SENT, description="Per variant, to call a difference")
    rows: list[VariantRow]
    notes: list[MilestoneNote]


# ---------------------------------------------------------------------- statistics
def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``trials`` (None for no trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # at 0 and at n successes the bound is exactly 0 or 1; keep rounding from hiding that
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def rate(successes: int, trials: int) -> Rate:
    interval = wilson(successes, trials)
    if interval is None:
        return Rate(numerator=successes, denominator=trials, rate=None, ci_low=None, ci_high=None)
    return Rate(
        numerator=successes,
        denominator=trials,
        rate=successes / trials,
        ci_low=interval[0],
        ci_high=interval[1],
    )


def _overlap(a: Rate, b: Rate) -> bool:
    if a.ci_low is None or a.ci_high is None or b.ci_low is None or b.ci_high is None:
        return True
    return a.ci_low <= b.ci_high and b.ci_low <= a.ci_high


def milestone_note(rows: Sequence[VariantRow]) -> str:
    """Whether the variants of one milestone can be told apart yet."""
    if len(rows) < 2:
        return "Only one variant has messages here: nothing to compare yet."
    small = [r for r in rows if r.too_few]
    if small:
        which = ", ".join(f"{r.variant} ({r.sent} sent)" for r in small)
        return (
            f"Too few messages to call: {which}; each variant needs at least {MIN_SENT}. "
            "No clear difference yet."
        )
    clear: list[str] = []
    unclear: list[str] = []
    for field, label in RATE_LABELS.items():
        rates = [(r.variant, getattr(r, field)) for r in rows]
        separated = [
            (a, b)
            for i, (a, ra) in enumerate(rates)
            for b, rb in rates[i + 1 :]
            if not _overlap(ra, rb)
        ]
        if separated:
            best = max(rates, key=lambda vr: vr[1].rate or 0.0)[0]
            clear.append(f"{label} rate ({best} highest)")
        else:
            unclear.append(label)
    if not clear:
        return "No clear difference yet: the 95% intervals of every rate overlap."
    text = "Clear difference in " + "; ".join(clear) + " (95% intervals do not overlap)."
    if unclear:
        text += f" No clear difference yet in the {', '.join(unclear)} rate."
        if len(unclear) > 1:
            text = text[:-1] + "s."
    return text


# ---------------------------------------------------------------------- query
def _client_uploads(settings: Settings | None) -> ColumnElement[bool]:
    """A document the client uploaded: anything but a staff key, a console user or system."""
    staff = [
        ~DocumentRow.uploaded_by.startswith(f"{role.value}:", autoescape=True)
        for role in Role
        if role != Role.CLIENT_APP
    ]
    usernames = sorted(settings.console_users) if settings is not None else []
    conditions = [*staff, DocumentRow.uploaded_by != "system"]
    if usernames:
        conditions.append(DocumentRow.uploaded_by.not_in(usernames))
    return and_(*conditions)


def _client_events() -> ColumnElement[bool]:
    return or_(CaseEvent.actor == CLIENT_ACTOR, CaseEvent.kind.in_(CLIENT_EVENT_KINDS))


def as_utc(value: datetime) -> datetime:
    """An aware time in UTC (a naive one is taken as UTC already). Raises ``OverflowError``
    for a time that cannot be shown in UTC (year 1 with a positive offset, say)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


async def _counts(
    session: AsyncSession,
    *,
    milestone: str | None,
    since: datetime | None,
    until: datetime | None,
    settings: Settings | None,
) -> list[Any]:
    n = NotificationRow
    at = func.coalesce(n.sent_at, n.created_at)
    clicked = or_(n.clicked_at.is_not(None), n.delivery_state == "clicked")
    opened = or_(n.opened_at.is_not(None), n.delivery_state == "opened", clicked)
    delivered = or_(n.delivered_at.is_not(None), n.delivery_state == "delivered", opened)
    first_upload = (
        select(func.min(DocumentRow.uploaded_at))
        .where(
            DocumentRow.case_ref == n.case_ref,
            DocumentRow.uploaded_at > at,
            _client_uploads(settings),
        )
        .correlate(n)
        .scalar_subquery()
    )
    first_event = (
        select(func.min(CaseEvent.occurred_at))
        .where(CaseEvent.case_ref == n.case_ref, CaseEvent.occurred_at > at, _client_events())
        .correlate(n)
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = [
        n.variant.is_not(None),
        n.channel == "email",
        n.audience == "client",
        n.contact_id.is_(None),
        n.status.in_(SENT_STATUSES),
    ]
    if milestone is not None:
        conditions.append(n.milestone == milestone)
    if since is not None:
        conditions.append(at >= since)
    if until is not None:
        conditions.append(at < until)
    messages = (
        select(
            n.milestone.label("milestone"),
            n.variant.label("variant"),
            delivered.label("delivered"),
            opened.label("opened"),
            clicked.label("clicked"),
            cast(extract("epoch", func.least(first_upload, first_event) - at), Float).label("wait"),
        )
        .where(*conditions)
        .subquery()
    )
    m = messages.c
    stmt = (
        select(
            m.milestone,
            m.variant,
            func.count().label("sent"),
            func.count().filter(m.delivered).label("delivered"),
            func.count().filter(m.opened).label("opened"),
            func.count().filter(m.clicked).label("clicked"),
            func.count(m.wait).label("n_with_action"),
            func.percentile_cont(0.5).within_group(m.wait).label("median_wait"),
        )
        .group_by(m.milestone, m.variant)
        .order_by(m.milestone, m.variant)
    )
    return list((await session.execute(stmt)).all())


def _row(milestone: str, variant: str, counts: Any | None, share: float | None) -> VariantRow:
    sent = int(counts.sent) if counts is not None else 0
    delivered = int(counts.delivered) if counts is not None else 0
    opened = int(counts.opened) if counts is not None else 0
    clicked = int(counts.clicked) if counts is not None else 0
    acted = int(counts.n_with_action) if counts is not None else 0
    median = counts.median_wait if counts is not None else None
    too_few = sent < MIN_SENT
    return VariantRow(
        milestone=milestone,
        variant=variant,
        expected_share=share,
        sent=sent,
        delivered=delivered,
        opened=opened,
        clicked=clicked,
        delivery_rate=rate(delivered, sent),
        open_rate=rate(opened, delivered),
        click_rate=rate(clicked, sent),
        n_with_action=acted,
        action_rate=rate(acted, sent),
        median_seconds_to_action=float(median) if median is not None else None,
        too_few=too_few,
        note=f"Only {sent} sent: too few to call (at least {MIN_SENT})." if too_few else None,
    )


async def build_report(
    session: AsyncSession,
    *,
    milestone: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> VariantReport:
    """The report over the messages that went out in ``[since, until)`` (open ends: all).

    Every variant declared in a milestone's ``variants.yaml`` has a row (zero when nothing was
    sent) for the milestone asked for, or for any milestone with messages in the window.
    """
    since = as_utc(since) if since is not None else None
    until = as_utc(until) if until is not None else None
    found = await _counts(session, milestone=milestone, since=since, until=until, settings=settings)
    declared = all_variant_sets()
    by_key = {(r.milestone, r.variant): r for r in found}
    milestones = sorted({r.milestone for r in found} | ({milestone} if milestone else set()))
    rows: list[VariantRow] = []
    notes: list[MilestoneNote] = []
    for name in milestones:
        vs = declared.get(name)
        order = list(vs.names) if vs is not None else []
        order += sorted(v for (m, v) in by_key if m == name and v not in order)
        group = [
            _row(
                name,
                variant,
                by_key.get((name, variant)),
                vs.share(variant) if vs is not None and variant in vs.names else None,
            )
            for variant in order
        ]
        if not group:
            notes.append(MilestoneNote(milestone=name, note="This milestone has no variants."))
            continue
        rows.extend(group)
        notes.append(MilestoneNote(milestone=name, note=milestone_note(group)))
    return VariantReport(
        milestone=milestone,
        since=since,
        until=until,
        generated_at=now or datetime.now(UTC),
        rows=rows,
        notes=notes,
    )


# ---------------------------------------------------------------------- CSV
CSV_COLUMNS = (
    "milestone",
    "variant",
    "expected_share",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "delivery_rate",
    "delivery_ci_low",
    "delivery_ci_high",
    "open_rate",
    "open_ci_low",
    "open_ci_high",
    "click_rate",
    "click_ci_low",
    "click_ci_high",
    "n_with_action",
    "action_rate",
    "action_ci_low",
    "action_ci_high",
    "median_seconds_to_action",
    "note",
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _cell(value: str) -> str:
    """Text a spreadsheet must not read as a formula."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_lines(report: VariantReport) -> Iterable[list[str]]:
    yield list(CSV_COLUMNS)
    notes = {n.milestone: n.note for n in report.notes}
    for r in report.rows:
        line = [_cell(r.milestone), _cell(r.variant), _number(r.expected_share)]
        line += [str(r.sent), str(r.delivered), str(r.opened), str(r.clicked)]
        for q in (r.delivery_rate, r.open_rate, r.click_rate):
            line += [_number(q.rate), _number(q.ci_low), _number(q.ci_high)]
        line.append(str(r.n_with_action))
        q = r.action_rate
        line += [_number(q.rate), _number(q.ci_low), _number(q.ci_high)]
        median = r.median_seconds_to_action
        line.append("" if median is None else f"{median:.0f}")
        line.append(_cell(" ".join(filter(None, [r.note, notes.get(r.milestone)]))))
        yield line


def to_csv(report: VariantReport) -> str:
    """The rows as CSV (a header row first; rates as fractions 0 to 1; the median in seconds;
    the note column holds the row's note and its milestone's)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(csv_lines(report))
    return out.getvalue()


# ---------------------------------------------------------------------- for people
EN_DASH = "\u2013"
NOTHING = "\u2014"


def percent(q: Rate) -> str:
    """``42% (35\u201349%)``: the rate and its interval; a dash when nothing to divide by."""
    if q.rate is None or q.ci_low is None or q.ci_high is None:
        return NOTHING
    return f"{q.rate:.0%} ({q.ci_low * 100:.0f}{EN_DASH}{q.ci_high * 100:.0f}%)"


def duration(seconds: float | None) -> str:
    """A median delay in words: ``3 d 4 h``, ``2 h 5 min``, ``40 min``, ``30 s``."""
    if seconds is None:
        return NOTHING
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"
