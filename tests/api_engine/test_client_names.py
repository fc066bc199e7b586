"""A client's name is text like any other: NUL, a lone surrogate or 1 MB is a 422, nothing is
written, and the error does not echo the input back."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from store.db import SessionFactory
from store.models import Case
from tests.api_engine.conftest import CLIENT
from tests.factories import profile_json


@pytest.mark.parametrize(
    "raw_name",
    [json.dumps("Ada\u0000Lovelace"), '"Ada \\ud800"', json.dumps("A" * 1_000_000)],
    ids=["nul", "lone-surrogate", "1mb"],
)
async def test_a_bad_client_name_is_422_and_creates_nothing(
    api: httpx.AsyncClient, sessions: SessionFactory, raw_name: str
) -> None:
    async with sessions() as s:
        before = await s.scalar(select(func.count()).select_from(Case))
    profile = json.dumps({**profile_json(), "name": "__NAME__"})
    body = (
        '{"case_type": "client_onboarding", "client": '
        + profile.replace('"__NAME__"', raw_name)
        + "}"
    )
    r = await api.post(
        "/cases", content=body.encode(), headers={**CLIENT, "Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text[:300]
    assert ["body", "client", "name"] in [e["loc"] for e in r.json()["detail"]]
    assert "AAAAAAAAAA" not in r.text and "Lovelace" not in r.text  # input not echoed
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == before


async def test_too_many_regulatory_requirements_is_422(api: httpx.AsyncClient) -> None:
    client = {**profile_json(), "regulatory_requirements": [f"r{i}" for i in range(10_000)]}
    r = await api.post("/cases", json={"client": client}, headers=CLIENT)
    assert r.status_code == 422
    assert ["body", "client", "regulatory_requirements"] in [e["loc"] for e in r.json()["detail"]]
