"""Additional contacts: added over HTTP with a role, each receives exactly the milestones the
case type gives that role (and nothing after being removed); the client's own messages are
unchanged. Messages go through the official clients to the SendGrid/Twilio stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from notifications import Milestone
from schemas.enums import Channel
from store.db import SessionFactory
from tests.api_engine.conftest import (
    ADMIN,
    CLIENT,
    MANAGER,
    OPERATOR,
    build_app,
    engine_settings,
    insert_case,
)
from tests.delivery.conftest import CLIENT_EMAIL, notify_input
from tests.standins.sendgrid_standin import SendGridStandin
from tests.standins.twilio_standin import TwilioStandin

LEGAL = "legal@client.example"
FINANCE_PHONE = "+447700900777"


@pytest.fixture
async def http(
    tmp_path: Any, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(engine_settings(tmp_path), sessions, dev_server_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def _send(acts: NotificationActivities, ref: str, milestone: Milestone) -> None:
    await ActivityEnvironment().run(
        acts.notify,
        notify_input(ref, milestone, channels=[Channel.EMAIL, Channel.IN_APP]),
    )


async def test_each_contact_receives_exactly_its_roles_milestones(
    http: httpx.AsyncClient,
    sessions: SessionFactory,
    acts: NotificationActivities,
    sendgrid: SendGridStandin,
    twilio: TwilioStandin,
) -> None:
    ref = await insert_case(sessions, case_type="client_onboarding", stage="document_collection")
    legal = await http.post(
        f"/cases/{ref}/contacts",
        json={"name": "Lena Legal", "role": "legal", "email": LEGAL},
        headers=CLIENT,
    )
    assert legal.status_code == 201, legal.text
    assert legal.json()["milestones"] == ["case_created", "compliance_approved", "setup_completed"]
    finance = await http.post(
        f"/cases/{ref}/contacts",
        json={"name": "Finn Finance", "role": "finance", "phone": FINANCE_PHONE},
        headers=MANAGER,
    )
    assert finance.status_code == 201, finance.text

    # refused: a role the case type does not know (without milestones), a staff notice,
    # nobody to reach, and callers who may not add contacts
    for body, code in (
        ({"name": "X", "role": "marketing", "email": "x@client.example"}, 422),
        (
            {"name": "X", "role": "legal", "email": "x@c.example", "milestones": ["sla_breached"]},
            422,
        ),
        ({"name": "X", "role": "legal"}, 422),
    ):
        r = await http.post(f"/cases/{ref}/contacts", json=body, headers=MANAGER)
        assert r.status_code == code, (body, r.text)
    assert (
        "contact roles: finance, legal"
        in (
            await http.post(
                f"/cases/{ref}/contacts",
                json={"name": "X", "role": "marketing", "email": "x@client.example"},
                headers=MANAGER,
            )
        ).text
    )
    r = await http.post(
        f"/cases/{ref}/contacts",
        json={"name": "X", "role": "legal", "email": LEGAL},
        headers=OPERATOR,
    )
    assert r.status_code == 403
    listed = await http.get(f"/cases/{ref}/contacts", headers=OPERATOR)
    assert [c["name"] for c in listed.json()] == ["Lena Legal", "Finn Finance"]

    for milestone in (Milestone.CASE_CREATED, Milestone.SETUP_COMPLETED, Milestone.WELCOME_PACKAGE):
        await _send(acts, ref, milestone)
    mails = [m for m in sendgrid.accepted if m.body["custom_args"].get("case_ref") == ref]
    by_to: dict[str, list[str]] = {}
    for mail in mails:
        by_to.setdefault(mail.to_email, []).append(mail.body["custom_args"]["milestone"])
    assert by_to == {
        CLIENT_EMAIL: ["case_created", "setup_completed", "welcome_package"],
        LEGAL: ["case_created", "setup_completed"],  # not the welcome package
    }
    legal_mail = next(m for m in mails if m.to_email == LEGAL)
    assert "Lena Legal" in str(legal_mail.body["personalizations"][0]["to"][0].get("name", ""))
    texts = [m for m in twilio.messages if m["to"] == FINANCE_PHONE]
    assert len(texts) == 2  # setup completed and the welcome package, by SMS
    assert all(ref in t["body"] for t in texts)

    # removed: nothing more for them; a second removal is 404
    contact_id = legal.json()["id"]
    assert (
        await http.delete(f"/cases/{ref}/contacts/{contact_id}", headers=ADMIN)
    ).status_code == 204
    assert (
        await http.delete(f"/cases/{ref}/contacts/{contact_id}", headers=ADMIN)
    ).status_code == 404
    await ActivityEnvironment().run(
        acts.notify,
        notify_input(ref, Milestone.COMPLIANCE_APPROVED, channels=[Channel.EMAIL, Channel.IN_APP]),
    )
    assert not [
        m
        for m in sendgrid.accepted
        if m.to_email == LEGAL and m.body["custom_args"].get("milestone") == "compliance_approved"
    ]
