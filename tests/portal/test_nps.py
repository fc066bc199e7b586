"""NPS after welcome: one answer per case, 0-6 opens a relationship-manager follow-up."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from api.web.portal_service import NPS_FOLLOW_UP_STAGE, add_business_days
from core.settings import Settings
from store.db import SessionFactory
from store.models import CallbackTaskRow, NpsResponse
from tests.portal.conftest import csrf_of, make_case, token_for


async def completed_case(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> tuple[str, str, str]:
    ref = await make_case(sessions, status="completed", stage="welcome")
    token = token_for(settings, ref)
    return ref, token, await csrf_of(api, token)


async def answers(sessions: SessionFactory, ref: str) -> list[NpsResponse]:
    async with sessions() as s:
        return list(await s.scalars(select(NpsResponse).where(NpsResponse.case_ref == ref)))


async def follow_ups(sessions: SessionFactory, ref: str) -> list[CallbackTaskRow]:
    async with sessions() as s:
        return list(await s.scalars(select(CallbackTaskRow).where(CallbackTaskRow.case_ref == ref)))


async def test_survey_shows_after_welcome_and_records_one_answer(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref, token, csrf = await completed_case(api, portal_settings, sessions)
    page = await api.get(f"/portal/{token}")
    assert "How did we do?" in page.text
    assert page.text.count('name="score"') == 11

    first = await api.post(
        f"/portal/{token}/nps", data={"csrf": csrf, "score": "9", "comment": "  Smooth!  "}
    )
    assert first.status_code == 303
    assert first.headers["location"] == f"/portal/{token}?notice=nps_thanks#feedback"
    second = await api.post(f"/portal/{token}/nps", data={"csrf": csrf, "score": "2"})
    assert second.status_code == 303
    assert second.headers["location"].endswith("?notice=nps_already#feedback")
    page = await api.get(second.headers["location"])
    assert "already recorded" in page.text
    assert 'name="score"' not in page.text

    [answer] = await answers(sessions, ref)
    assert (answer.score, answer.comment) == (9, "Smooth!")
    assert await follow_ups(sessions, ref) == []  # a promoter needs no follow-up


@pytest.mark.parametrize("score", ["0", "6"])
async def test_detractor_opens_one_follow_up_for_the_relationship_manager(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory, score: str
):
    ref, token, csrf = await completed_case(api, portal_settings, sessions)
    before = datetime.now(UTC)
    for _ in range(2):
        response = await api.post(f"/portal/{token}/nps", data={"csrf": csrf, "score": score})
        assert response.status_code == 303
    [task] = await follow_ups(sessions, ref)
    assert task.stage == NPS_FOLLOW_UP_STAGE == "nps_follow_up"
    assert task.assignee_role == "relationship_manager" and task.status == "open"
    assert add_business_days(before, 2) <= task.due_at <= add_business_days(datetime.now(UTC), 2)
    assert task.due_at.weekday() < 5
    assert len(await answers(sessions, ref)) == 1


async def test_no_survey_before_completion(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, status="open", stage="final_review")
    token = token_for(portal_settings, ref)
    page = await api.get(f"/portal/{token}")
    assert "How did we do?" not in page.text
    csrf = await csrf_of(api, token)
    response = await api.post(f"/portal/{token}/nps", data={"csrf": csrf, "score": "3"})
    assert response.status_code == 409
    assert "The survey opens once your onboarding is complete" in response.text
    assert await answers(sessions, ref) == []
    assert await follow_ups(sessions, ref) == []


@pytest.mark.parametrize("score", ["", "11", "-1", "7.5", "ten"])
async def test_score_must_be_0_to_10(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory, score: str
):
    ref, token, csrf = await completed_case(api, portal_settings, sessions)
    response = await api.post(f"/portal/{token}/nps", data={"csrf": csrf, "score": score})
    assert response.status_code == 422
    assert "Please choose a score from 0 to 10." in response.text
    async with sessions() as s:
        count = await s.scalar(
            select(func.count()).select_from(NpsResponse).where(NpsResponse.case_ref == ref)
        )
    assert count == 0


async def test_comment_is_bounded(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref, token, csrf = await completed_case(api, portal_settings, sessions)
    response = await api.post(
        f"/portal/{token}/nps", data={"csrf": csrf, "score": "8", "comment": "x" * 2001}
    )
    assert response.status_code == 422
    assert await answers(sessions, ref) == []
    ok = await api.post(
        f"/portal/{token}/nps", data={"csrf": csrf, "score": "8", "comment": "x" * 2000}
    )
    assert ok.status_code == 303


def test_business_days_skip_the_weekend() -> None:
    friday = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert add_business_days(friday, 2) == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert add_business_days(monday, 2) == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    saturday = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert add_business_days(saturday, 2) == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
