"""The A/B variant report over HTTP: JSON, CSV and the console page, against rows written
straight into the shared test database.

Each test writes its messages into a time window of its own (somewhere between 1980 and
2010, picked at random), so rows of other tests (and of earlier runs against the same
database) never count.
"""

from __future__ import annotations

import csv
import html as html_lib
import io
import random
import re
import statistics
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from api.services import variant_report as svc
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import CaseEvent, DocumentRow, NotificationRow
from tests.api_engine.conftest import ADMIN, CLIENT, MANAGER, OPERATOR, REVIEWER
from tests.conftest import new_ref
from tests.factories import profile
from tests.web.conftest import client_for, sign_in

MILESTONE = "documents_needed"


def window() -> tuple[datetime, datetime]:
    """A two-day window no other test writes into."""
    minutes = uuid.uuid4().int % (30 * 365 * 24 * 60)
    start = datetime(1980, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    return start, start + timedelta(days=2)


@dataclass
class Sent:
    """One client email of a variant, what the provider told us, and what the client did."""

    variant: str
    delivered_at: bool = False
    opened_at: bool = False
    clicked_at: bool = False
    delivery_state: str | None = None
    local_outbox: bool = False
    upload_after: timedelta | None = None
    event_after: timedelta | None = None

    # the documented counting rule, written out again
    @property
    def clicked(self) -> bool:
        return self.clicked_at or self.delivery_state == "clicked"

    @property
    def opened(self) -> bool:
        return self.opened_at or self.delivery_state == "opened" or self.clicked

    @property
    def delivered(self) -> bool:
        return self.delivered_at or self.delivery_state == "delivered" or self.opened

    @property
    def wait(self) -> timedelta | None:
        waits = [w for w in (self.upload_after, self.event_after) if w is not None]
        return min(waits) if waits else None


def plan(rng: random.Random, variant: str, n: int, *, open_share: float) -> list[Sent]:
    out = []
    for i in range(n):
        clicked = rng.random() < open_share / 3
        opened = clicked or rng.random() < open_share
        out.append(
            Sent(
                variant=variant,
                delivered_at=opened or rng.random() < 0.85,
                # a click without an open event (images blocked): still an open
                opened_at=opened and not (clicked and i % 4 == 0),
                clicked_at=clicked,
                local_outbox=i % 5 == 0,
                upload_after=timedelta(minutes=rng.randint(10, 5000))
                if rng.random() < 0.5
                else None,
                event_after=timedelta(minutes=rng.randint(10, 5000))
                if rng.random() < 0.2
                else None,
            )
        )
    # delivery known only from the state column
    out.append(Sent(variant=variant, delivery_state="delivered"))
    out.append(Sent(variant=variant, delivery_state="clicked"))
    return out


def _doc(ref: str, n: int, by: str, at: datetime) -> dict[str, Any]:
    return {
        "id": f"doc_{uuid.uuid4().hex[:26]}",
        "case_ref": ref,
        "kind": "passport",
        "filename": f"scan-{n}.pdf",
        "content_type": "application/pdf",
        "size": 1000 + n,
        "sha256": uuid.uuid4().hex + uuid.uuid4().hex,
        "storage_key": f"test/{ref}/{n}",
        "uploaded_by": by,
        "uploaded_at": at,
        "status": "received",
    }


def _message(ref: str, sent: Sent, channel: str, at: datetime, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "outbox_key": f"{ref}:{MILESTONE}:1:{channel}",
        "case_ref": ref,
        "milestone": MILESTONE,
        "channel": channel,
        "audience": "client",
        "recipient": "ada@example.com",
        "subject": "Case: please send 2 documents",
        "body_text": "text",
        "status": "local_outbox" if sent.local_outbox else "sent",
        "provider": "local" if sent.local_outbox else "sendgrid",
        "attempts": 1,
        "created_at": at - timedelta(seconds=2),
        "sent_at": at,
        "variant": sent.variant,
        "delivery_state": sent.delivery_state,
        "delivered_at": at + timedelta(minutes=1) if sent.delivered_at else None,
        "opened_at": at + timedelta(minutes=30) if sent.opened_at else None,
        "clicked_at": at + timedelta(minutes=31) if sent.clicked_at else None,
    }
    row.update(over)
    return row


async def seed(sessions: SessionFactory, start: datetime, messages: list[Sent]) -> list[str]:
    """A case per message: its client email, rows that must not count (in-app, SMS, staff,
    an additional contact's copy, a failed send, another milestone), and client and staff
    activity around it."""
    refs: list[str] = []
    notifications: list[dict[str, Any]] = []
    documents: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    async with sessions() as s:
        for i, sent in enumerate(messages):
            ref = new_ref("VAR")
            refs.append(ref)
            await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
            at = start + timedelta(minutes=i)
            notifications += [
                _message(ref, sent, "email", at),
                _message(ref, sent, "in_app", at, delivered_at=None, opened_at=None),
                _message(ref, sent, "sms", at, status="fallback", outbox_key=f"{ref}:x:sms"),
                _message(ref, sent, "email", at, audience="staff", outbox_key=f"{ref}:x:staff"),
                _message(ref, sent, "email", at, contact_id=7, outbox_key=f"{ref}:x:contact"),
                _message(ref, sent, "email", at, status="failed", outbox_key=f"{ref}:2:email"),
                _message(ref, sent, "email", at, variant=None, outbox_key=f"{ref}:x:plain"),
                _message(
                    ref, sent, "email", at, milestone="case_created", outbox_key=f"{ref}:x:cc"
                ),
            ]
            # never the client's next action: before the message, or done by staff/system
            documents += [
                _doc(ref, 1, "client", at - timedelta(hours=1)),
                _doc(ref, 2, "case_manager:ab12cd34", at + timedelta(minutes=1)),
                _doc(ref, 3, "maria", at + timedelta(minutes=2)),
                _doc(ref, 4, "system", at + timedelta(minutes=3)),
            ]
            events += [
                {
                    "case_ref": ref,
                    "event_key": "staff-1",
                    "kind": "paused",
                    "actor": "maria",
                    "detail": {},
                    "occurred_at": at + timedelta(minutes=4),
                },
                {
                    "case_ref": ref,
                    "event_key": "client-before",
                    "kind": "client_message",
                    "actor": "client",
                    "detail": {"text": "hello"},
                    "occurred_at": at - timedelta(minutes=5),
                },
            ]
            if sent.upload_after is not None:
                documents.append(_doc(ref, 5, "client", at + sent.upload_after))
                documents.append(_doc(ref, 6, "client", at + sent.upload_after * 2))
            if sent.event_after is not None:
                events.append(
                    {
                        "case_ref": ref,
                        "event_key": "client-1",
                        "kind": "client_message",
                        "actor": "client_app:12345678",
                        "detail": {"text": "sent it", "channel": "email"},
                        "occurred_at": at + sent.event_after,
                    }
                )
        await s.execute(insert(NotificationRow), notifications)
        await s.execute(insert(DocumentRow), documents)
        await s.execute(insert(CaseEvent), events)
        await s.commit()
    return refs


def expected(messages: list[Sent], variant: str) -> dict[str, Any]:
    mine = [m for m in messages if m.variant == variant]
    waits = [m.wait.total_seconds() for m in mine if m.wait is not None]
    return {
        "sent": len(mine),
        "delivered": sum(m.delivered for m in mine),
        "opened": sum(m.opened for m in mine),
        "clicked": sum(m.clicked for m in mine),
        "n_with_action": len(waits),
        "median": statistics.median(waits) if waits else None,
    }


def query(start: datetime, end: datetime, **more: str) -> dict[str, str]:
    return {"milestone": MILESTONE, "since": start.isoformat(), "until": end.isoformat(), **more}


def check_rate(rate: dict[str, Any], numerator: int, denominator: int) -> None:
    assert (rate["numerator"], rate["denominator"]) == (numerator, denominator)
    if denominator == 0:
        assert rate["rate"] is None and rate["ci_low"] is None and rate["ci_high"] is None
        return
    assert rate["rate"] == pytest.approx(numerator / denominator)
    assert 0.0 <= rate["ci_low"] <= rate["rate"] <= rate["ci_high"] <= 1.0
    assert rate["ci_low"] < rate["ci_high"]


# ------------------------------------------------------------------ the tests
async def test_counts_rates_and_median_match_the_messages_sent(
    report_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    rng = random.Random(20260501)
    messages = plan(rng, "a", 40, open_share=0.3) + plan(rng, "b", 36, open_share=0.5)
    rng.shuffle(messages)
    start, end = window()
    await seed(sessions, start, messages)

    response = await report_api.get("/reports/variants", params=query(start, end), headers=MANAGER)
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {r["variant"]: r for r in body["rows"]}
    assert [r["variant"] for r in body["rows"]] == ["a", "b"]
    for variant in ("a", "b"):
        want, row = expected(messages, variant), rows[variant]
        assert row["milestone"] == MILESTONE
        assert row["expected_share"] == pytest.approx(0.5)
        for key in ("sent", "delivered", "opened", "clicked", "n_with_action"):
            assert row[key] == want[key], (variant, key)
        assert row["median_seconds_to_action"] == pytest.approx(want["median"])
        check_rate(row["delivery_rate"], want["delivered"], want["sent"])
        check_rate(row["open_rate"], want["opened"], want["delivered"])
        check_rate(row["click_rate"], want["clicked"], want["sent"])
        check_rate(row["action_rate"], want["n_with_action"], want["sent"])
        assert row["too_few"] is False and row["note"] is None
    assert sum(r["sent"] for r in body["rows"]) == len(messages)
    [note] = body["notes"]
    assert note["milestone"] == MILESTONE
    assert "Too few" not in note["note"]
    assert "difference" in note["note"]

    # the CSV has the same numbers
    response = await report_api.get(
        "/reports/variants.csv", params=query(start, end), headers=OPERATOR
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert list(lines[0]) == list(svc.CSV_COLUMNS)
    assert [line["variant"] for line in lines] == ["a", "b"]
    for line in lines:
        row = rows[line["variant"]]
        for key in ("sent", "delivered", "opened", "clicked", "n_with_action"):
            assert int(line[key]) == row[key]
        for prefix, field in (
            ("delivery", "delivery_rate"),
            ("open", "open_rate"),
            ("click", "click_rate"),
            ("action", "action_rate"),
        ):
            assert float(line[f"{prefix}_rate"]) == pytest.approx(row[field]["rate"], abs=5e-5)
            assert float(line[f"{prefix}_ci_low"]) == pytest.approx(row[field]["ci_low"], abs=5e-5)
            assert float(line[f"{prefix}_ci_high"]) == pytest.approx(
                row[field]["ci_high"], abs=5e-5
            )
        assert float(line["median_seconds_to_action"]) == pytest.approx(
            row["median_seconds_to_action"], abs=0.5
        )
        assert line["note"] == note["note"]


async def test_small_samples_are_flagged_too_few_to_call(
    report_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    messages = [
        Sent("a", delivered_at=True, opened_at=True, upload_after=timedelta(hours=2)),
        Sent("a", delivered_at=True, upload_after=timedelta(hours=4)),
        Sent("a", delivered_at=True, event_after=timedelta(hours=9)),
        Sent("a"),
        Sent("b", delivered_at=True, opened_at=True, clicked_at=True),
        Sent("b", delivered_at=True, upload_after=timedelta(minutes=30)),
    ]
    start, end = window()
    await seed(sessions, start, messages)
    response = await report_api.get("/reports/variants", params=query(start, end), headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {r["variant"]: r for r in body["rows"]}
    assert rows["a"]["sent"] == 4 and rows["b"]["sent"] == 2
    assert rows["a"]["n_with_action"] == 3
    assert rows["a"]["median_seconds_to_action"] == pytest.approx(4 * 3600)
    assert rows["b"]["median_seconds_to_action"] == pytest.approx(30 * 60)
    for row in rows.values():
        assert row["too_few"] is True
        assert "too few to call" in row["note"]
    [note] = body["notes"]
    assert note["note"].startswith("Too few messages to call: a (4 sent), b (2 sent)")
    assert "No clear difference yet" in note["note"]


async def test_an_empty_window_lists_the_declared_variants_with_zeros(
    report_api: httpx.AsyncClient,
) -> None:
    start, end = window()
    response = await report_api.get("/reports/variants", params=query(start, end), headers=MANAGER)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert [(r["variant"], r["sent"]) for r in rows] == [("a", 0), ("b", 0)]
    assert rows[0]["delivery_rate"]["rate"] is None
    assert rows[0]["median_seconds_to_action"] is None
    csv_text = (
        await report_api.get("/reports/variants.csv", params=query(start, end), headers=MANAGER)
    ).text
    assert csv_text.splitlines()[0] == ",".join(svc.CSV_COLUMNS)
    assert len(csv_text.splitlines()) == 3


async def test_who_may_read_the_report_and_bad_windows(report_api: httpx.AsyncClient) -> None:
    start, end = window()
    for path in ("/reports/variants", "/reports/variants.csv"):
        assert (await report_api.get(path, params=query(start, end))).status_code == 401
        for headers in (CLIENT, REVIEWER):
            response = await report_api.get(path, params=query(start, end), headers=headers)
            assert response.status_code == 403
        backwards = await report_api.get(path, params=query(end, start), headers=MANAGER)
        assert backwards.status_code == 422
        assert "since" in backwards.text
        unknown = await report_api.get(
            path, params=query(start, end, milestone="no_such"), headers=MANAGER
        )
        assert unknown.status_code == 422
        overflow = await report_api.get(
            path, params={"since": "0001-01-01T00:00:00+05:00"}, headers=MANAGER
        )
        assert overflow.status_code == 422


async def test_console_page_shows_rates_with_intervals_and_the_csv_link(
    report_app: FastAPI, sessions: SessionFactory
) -> None:
    messages = [Sent("a", delivered_at=True, opened_at=True)] * 3 + [Sent("b")] * 2
    start, _ = window()
    await seed(sessions, start, messages)
    day = start.date().isoformat()
    async with client_for(report_app) as browser:
        await sign_in(browser, "olga")  # an operator
        page = await browser.get(
            "/console/reports/variants", params={"milestone": MILESTONE, "from": day, "to": day}
        )
        assert page.status_code == 200, page.text
        html = page.text
        assert 'data-testid="sent-documents_needed-a">3' in html
        assert 'data-testid="sent-documents_needed-b">2' in html
        # 3 of 3 delivered: 100% (44-100%) with the Wilson interval
        low = svc.wilson(3, 3)
        assert low is not None
        assert f"3 · 100% ({low[0] * 100:.0f}\u2013100%)" in html
        assert "too few to call" in html
        assert "Too few messages to call" in html
        # the page's CSV link carries its filters, and its CSV says the same
        found = re.search(r'href="(/reports/variants\.csv[^"]*)"', html)
        assert found is not None
        link = html_lib.unescape(found.group(1))
        assert link.startswith(f"/reports/variants.csv?milestone={MILESTONE}&since={day}T00")
        assert "until=" in link
        lines = list(csv.DictReader(io.StringIO((await browser.get(link)).text)))
        assert {line["variant"]: int(line["sent"]) for line in lines} == {"a": 3, "b": 2}

        bad = await browser.get(
            "/console/reports/variants", params={"milestone": "nope", "from": "yesterday"}
        )
        assert bad.status_code == 200
        assert "That milestone is unknown" in bad.text
        assert "The start day is not a date" in bad.text

    async with client_for(report_app) as browser:
        await sign_in(browser, "rita")  # a compliance reviewer
        refused = await browser.get("/console/reports/variants")
        assert refused.status_code == 403
        assert "may not see the variant report" in refused.text

    async with client_for(report_app) as browser:  # not signed in: to the sign-in page
        response = await browser.get("/console/reports/variants")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login")


# ------------------------------------------------------------------ statistics
def test_wilson_interval_matches_known_values() -> None:
    assert svc.wilson(0, 0) is None
    low, high = svc.wilson(5, 10) or (0, 0)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = svc.wilson(0, 10) or (1, 1)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = svc.wilson(10, 10) or (0, 0)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0
    low, high = svc.wilson(81, 263) or (0, 0)
    assert low == pytest.approx(0.2553, abs=1e-3) and high == pytest.approx(0.3662, abs=1e-3)


def _row(variant: str, sent: int, delivered: int, opened: int, clicked: int, acted: int):
    return svc.VariantRow(
        milestone=MILESTONE,
        variant=variant,
        expected_share=0.5,
        sent=sent,
        delivered=delivered,
        opened=opened,
        clicked=clicked,
        delivery_rate=svc.rate(delivered, sent),
        open_rate=svc.rate(opened, delivered),
        click_rate=svc.rate(clicked, sent),
        n_with_action=acted,
        action_rate=svc.rate(acted, sent),
        median_seconds_to_action=None,
        too_few=sent < svc.MIN_SENT,
    )


def test_the_note_calls_a_difference_only_when_the_intervals_do_not_overlap() -> None:
    same = [_row("a", 500, 480, 200, 50, 100), _row("b", 500, 482, 210, 55, 104)]
    assert svc.milestone_note(same) == (
        "No clear difference yet: the 95% intervals of every rate overlap."
    )
    apart = [_row("a", 500, 480, 150, 20, 100), _row("b", 500, 482, 300, 90, 104)]
    note = svc.milestone_note(apart)
    assert note.startswith("Clear difference in open rate (b highest); click rate (b highest)")
    assert note.endswith("No clear difference yet in the delivery, action rates.")
    small = [_row("a", 29, 29, 29, 29, 29), _row("b", 500, 0, 0, 0, 0)]
    assert svc.milestone_note(small).startswith("Too few messages to call: a (29 sent)")
    assert "Only one variant" in svc.milestone_note(same[:1])


def test_percent_and_duration_for_people() -> None:
    assert svc.percent(svc.rate(0, 0)) == "\u2014"
    q = svc.rate(42, 100)
    assert svc.percent(q) == "42% (33\u201352%)"
    assert svc.duration(None) == "\u2014"
    assert svc.duration(30) == "30 s"
    assert svc.duration(40 * 60) == "40 min"
    assert svc.duration(2 * 3600 + 5 * 60) == "2 h 5 min"
    assert svc.duration(3 * 86400 + 4 * 3600) == "3 d 4 h"
