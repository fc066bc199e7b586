"""End to end: messages rendered and sent by the notify activity carry their A/B variant, the
split follows the weights, and the report counts exactly the messages sent."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from notifications import Milestone
from notifications.variants import pick
from schemas.enums import Channel
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import NotificationRow
from tests.api_engine.conftest import MANAGER
from tests.conftest import new_ref
from tests.delivery.conftest import notify_input
from tests.factories import profile

CASES = 60


async def test_sent_messages_carry_their_variant_and_the_report_counts_them(
    sessions: SessionFactory, report_api: httpx.AsyncClient
) -> None:
    acts = NotificationActivities(sessions, email=None, sms=None)  # the local outbox
    since = datetime.now(UTC) - timedelta(seconds=1)
    refs = [new_ref("AB") for _ in range(CASES)]
    async with sessions.begin() as s:
        for ref in refs:
            await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
    for ref in refs:
        await ActivityEnvironment().run(
            acts.notify,
            notify_input(ref, Milestone.DOCUMENTS_NEEDED, channels=[Channel.EMAIL, Channel.IN_APP]),
        )
    until = datetime.now(UTC) + timedelta(seconds=1)

    async with sessions() as s:
        rows = list(
            await s.scalars(
                select(NotificationRow).where(
                    NotificationRow.case_ref.in_(refs), NotificationRow.channel == "email"
                )
            )
        )
    assert len(rows) == CASES
    assert all(r.variant == pick("documents_needed", r.case_ref) for r in rows)
    sent = Counter(r.variant for r in rows)
    assert set(sent) == {"a", "b"} and all(n >= 15 for n in sent.values())  # 50/50 of 60
    b_row = next(r for r in rows if r.variant == "b")
    a_row = next(r for r in rows if r.variant == "a")
    assert b_row.subject != a_row.subject  # b has its own wording

    r = await report_api.get(
        "/reports/variants",
        params={
            "milestone": "documents_needed",
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
        headers=MANAGER,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    counted = {row["variant"]: row["sent"] for row in body["rows"]}
    assert counted == dict(sent)
