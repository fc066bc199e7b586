"""The acknowledgement (and every client message) carries the client's portal link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from api.web.portal_service import make_portal_link
from core.security import read_portal_token
from core.settings import Settings
from notifications import Milestone, sample_context
from schemas.enums import Channel
from schemas.notifications import NotifyInput, Recipient
from store.db import SessionFactory
from store.models import NotificationRow
from tests.portal.conftest import make_case


def client_context(ref: str, milestone: Milestone, **extra: Any) -> dict[str, Any]:
    data = sample_context(milestone).model_dump(mode="json")
    data.pop("portal_url", None)
    data.update(case_ref=ref, client_name="Ada Lovelace", **extra)
    return data


def notify_input(ref: str, context: dict[str, Any], milestone: Milestone) -> NotifyInput:
    return NotifyInput(
        case_ref=ref,
        milestone=milestone.value,
        context=context,
        recipient=Recipient(name="Ada Lovelace", email="ada@example.com", phone="+447700900123"),
        channels=[Channel.EMAIL, Channel.SMS, Channel.IN_APP],
    )


async def rows(sessions: SessionFactory, ref: str) -> dict[str, NotificationRow]:
    async with sessions() as s:
        found = await s.scalars(select(NotificationRow).where(NotificationRow.case_ref == ref))
        return {r.channel: r for r in found}


def test_make_portal_link_mints_an_expiring_token_for_the_case(portal_settings: Settings):
    link = make_portal_link(portal_settings)("C-ABCDEFGHJK")
    base, _, token = link.rpartition("/")
    assert base == portal_settings.portal_base_url
    grant = read_portal_token(token, secret=portal_settings.portal_secret.get_secret_value())
    assert grant.case_ref == "C-ABCDEFGHJK"
    expected = datetime.now(UTC) + timedelta(days=portal_settings.portal_link_ttl_days)
    assert abs((grant.expires_at - expected).total_seconds()) < 5


async def test_case_created_email_carries_the_portal_link(
    portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    acts = NotificationActivities(
        sessions, email=None, sms=None, portal_link=make_portal_link(portal_settings)
    )
    inp = notify_input(ref, client_context(ref, Milestone.CASE_CREATED), Milestone.CASE_CREATED)
    await ActivityEnvironment().run(acts.notify, inp)

    email = (await rows(sessions, ref))["email"]
    assert email.status == "local_outbox"
    prefix = f"View your case: {portal_settings.portal_base_url}/"
    assert prefix in email.body_text
    token = email.body_text.split(prefix, 1)[1].split()[0]
    grant = read_portal_token(token, secret=portal_settings.portal_secret.get_secret_value())
    assert grant.case_ref == ref
    assert email.body_html is not None and f"/portal/{token}" in email.body_html
    assert f"/portal/{token}" in (await rows(sessions, ref))["in_app"].body_text


async def test_a_given_portal_url_is_kept_and_no_link_without_a_minter(
    portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    given = "https://portal.example.com/cases/mine"
    linked = NotificationActivities(
        sessions, email=None, sms=None, portal_link=make_portal_link(portal_settings)
    )
    ctx = client_context(ref, Milestone.CASE_CREATED, portal_url=given)
    await ActivityEnvironment().run(linked.notify, notify_input(ref, ctx, Milestone.CASE_CREATED))
    assert given in (await rows(sessions, ref))["email"].body_text

    other = await make_case(sessions)
    plain = NotificationActivities(sessions, email=None, sms=None)
    ctx = client_context(other, Milestone.CASE_CREATED)
    await ActivityEnvironment().run(plain.notify, notify_input(other, ctx, Milestone.CASE_CREATED))
    assert "View your case" not in (await rows(sessions, other))["email"].body_text


async def test_a_link_that_cannot_fit_is_left_out_rather_than_failing(
    portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    acts = NotificationActivities(
        sessions, email=None, sms=None, portal_link=lambda r: "https://x.example/" + "a" * 300
    )
    inp = notify_input(ref, client_context(ref, Milestone.CASE_CREATED), Milestone.CASE_CREATED)
    await ActivityEnvironment().run(acts.notify, inp)
    assert "View your case" not in (await rows(sessions, ref))["email"].body_text


def test_links_follow_the_api_port_unless_a_base_url_is_set(monkeypatch):
    monkeypatch.delenv("PORTAL_BASE_URL", raising=False)
    monkeypatch.delenv("CONSOLE_BASE_URL", raising=False)
    on_9001 = Settings(_env_file=None, api_port=9001)
    assert make_portal_link(on_9001)("C-ABCDEFGHJK").startswith("http://127.0.0.1:9001/portal/")
    assert on_9001.console_base_url == "http://127.0.0.1:9001/console"
    wildcard = Settings(_env_file=None, api_host="0.0.0.0", api_port=8100)  # noqa: S104
    assert wildcard.portal_base_url == "http://127.0.0.1:8100/portal"  # a host a link can use
    assert Settings(_env_file=None).portal_base_url == "http://127.0.0.1:8000/portal"
    given = Settings(_env_file=None, api_port=9001, portal_base_url="https://bank.example/p")
    assert make_portal_link(given)("C-ABCDEFGHJK").startswith("https://bank.example/p/")
    monkeypatch.setenv("API_PORT", "9123")
    assert Settings(_env_file=None).portal_base_url == "http://127.0.0.1:9123/portal"
