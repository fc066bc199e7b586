"""Delivery fixtures: the SendGrid/Twilio stand-ins behind the real SDK clients, a case row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from activities.notifications import NotificationActivities
from integrations.sendgrid_email import SendGridEmailSender
from integrations.twilio_sms import TwilioSmsSender
from notifications import Milestone, sample_context
from schemas.enums import Channel
from schemas.notifications import NotifyInput, Recipient
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import NotificationRow
from tests.conftest import new_ref
from tests.factories import profile
from tests.standins.sendgrid_standin import SendGridStandin, running_sendgrid_standin
from tests.standins.twilio_standin import TwilioStandin, running_twilio_standin

SG_KEY = "SG.delivery-test-key.0123456789"
TW_SID = "AC" + "00112233445566778899aabbccddeeff"
TW_TOKEN = "delivery-test-token-5e1f0c"
FROM_EMAIL = "onboarding@bank.example"
FROM_NAME = "Northbridge Onboarding"
FROM_NUMBER = "+15005550006"
CLIENT_EMAIL = "ada@example.com"
CLIENT_PHONE = "+447700900123"


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandin]:
    with running_sendgrid_standin(api_key=SG_KEY) as standin:
        yield standin


@pytest.fixture
def twilio() -> Iterator[TwilioStandin]:
    with running_twilio_standin(account_sid=TW_SID, auth_token=TW_TOKEN) as standin:
        yield standin


@pytest.fixture
def email_sender(sendgrid: SendGridStandin) -> SendGridEmailSender:
    return SendGridEmailSender(SG_KEY, FROM_EMAIL, FROM_NAME, host=sendgrid.base_url, timeout=5)


@pytest.fixture
def sms_sender(twilio: TwilioStandin) -> TwilioSmsSender:
    return TwilioSmsSender(TW_SID, TW_TOKEN, FROM_NUMBER, base_url=twilio.base_url, timeout=5)


@pytest.fixture
def acts(
    sessions: SessionFactory, email_sender: SendGridEmailSender, sms_sender: TwilioSmsSender
) -> NotificationActivities:
    return NotificationActivities(sessions, email=email_sender, sms=sms_sender)


@pytest.fixture
async def case_ref(sessions: SessionFactory) -> str:
    """A case row (draft is enough: the outbox only needs the foreign key)."""
    ref = new_ref("N")
    async with sessions() as s:
        await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
        await s.commit()
    return ref


def context(ref: str, milestone: Milestone = Milestone.CASE_CREATED) -> dict[str, Any]:
    data = sample_context(milestone).model_dump(mode="json")
    data["case_ref"] = ref
    data["client_name"] = "Ada Lovelace"
    return data


def notify_input(
    ref: str,
    milestone: Milestone = Milestone.CASE_CREATED,
    *,
    channels: list[Channel] | None = None,
    email: str | None = CLIENT_EMAIL,
    phone: str | None = CLIENT_PHONE,
    **overrides: Any,
) -> NotifyInput:
    fields: dict[str, Any] = {
        "case_ref": ref,
        "milestone": milestone.value,
        "context": context(ref, milestone),
        "recipient": Recipient(name="Ada Lovelace", email=email, phone=phone),
        "channels": channels if channels is not None else [Channel.EMAIL, Channel.IN_APP],
    }
    fields.update(overrides)
    return NotifyInput(**fields)


async def outbox(
    sessions: SessionFactory, ref: str, milestone: Milestone | None = None
) -> dict[str, NotificationRow]:
    """The case's outbox rows by channel (one milestone, when given)."""
    query = select(NotificationRow).where(NotificationRow.case_ref == ref)
    if milestone is not None:
        query = query.where(NotificationRow.milestone == milestone.value)
    async with sessions() as s:
        rows = (await s.scalars(query.order_by(NotificationRow.id))).all()
    by_channel: dict[str, NotificationRow] = {}
    for row in rows:
        assert row.channel not in by_channel, f"two {row.channel} rows: {rows}"
        by_channel[row.channel] = row
    return by_channel
