"""The console's what-if page: a form, an upload, the report; problems on the page, never a
500; case managers, operators and admins only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.routes.console_whatif import MAX_DRAFT_BYTES
from store.db import SessionFactory
from tests.web.conftest import client_for, page_csrf, sign_in
from tests.whatif.helpers import (
    Raw,
    as_type,
    cut_compliance,
    insert_history,
    renamed,
    write_draft,
)

PAGE = "/console/whatif"


Browser = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="module")
async def history(sessions: SessionFactory) -> str:
    """The fixture history, in ``history_intervals``, as cases of a case type of this
    module's own (the database is shared)."""
    name = f"whatif_web_{uuid.uuid4().hex[:8]}"
    await insert_history(sessions, as_type(name))
    return name


@pytest.fixture
async def browser(whatif_app: FastAPI) -> AsyncIterator[Browser]:
    """``await browser("maria")``: a signed-in console session."""
    clients: list[httpx.AsyncClient] = []

    async def make(username: str) -> httpx.AsyncClient:
        client = client_for(whatif_app)
        clients.append(client)
        await sign_in(client, username)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def upload(
    client: httpx.AsyncClient,
    *,
    case_type: str,
    content: bytes,
    filename: str = "draft.yaml",
    since: str = "",
) -> httpx.Response:
    token = await page_csrf(client, PAGE)
    return await client.post(
        PAGE,
        data={"csrf_token": token, "case_type": case_type, "since": since},
        files={"draft": (filename, content, "application/yaml")},
    )


async def test_the_form_offers_types_in_service_and_with_history(
    browser: Browser, history: str
) -> None:
    client = await browser("maria")
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert 'data-testid="whatif-form"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert f'<option value="{history}">' in page.text
    assert '<option value="client_onboarding">' in page.text


async def test_an_uploaded_draft_gets_its_report(
    browser: Browser, history: str, tmp_path: Path
) -> None:
    draft = write_draft(tmp_path, renamed(history, cut_compliance)).read_bytes()
    client = await browser("olga")  # an operator
    response = await upload(client, case_type=history, content=draft)
    assert response.status_code == 200, response.text
    text = response.text
    assert 'data-testid="whatif-report"' in text
    prefix = history[-8:].upper()
    for ref in ("WI-02", "WI-03", "WI-06", "WI-08"):
        assert f'data-testid="whatif-case-{prefix}-{ref}"' in text
    for ref in ("WI-01", "WI-04", "WI-05", "WI-07"):
        assert f"whatif-case-{prefix}-{ref}" not in text
    assert "compliance_review: met → breached (5h of 4h, 24/7)" in text
    assert 'data-testid="whatif-breaches-compliance_review">5 → 9<' in text
    assert 'data-testid="whatif-changed-count">4 would change<' in text
    assert "14 past cases" in text
    assert f'<option value="{history}" selected>' in text


async def test_since_narrows_the_history(browser: Browser, history: str, tmp_path: Path) -> None:
    draft = write_draft(tmp_path, renamed(history, cut_compliance)).read_bytes()
    client = await browser("ada")  # an admin
    response = await upload(client, case_type=history, content=draft, since="2026-03-06")
    assert response.status_code == 200
    assert "4 past cases" in response.text
    assert 'data-testid="whatif-no-change"' in response.text


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        (b"name: [unclosed\n", "not valid YAML (line"),
        (b"- just\n- a list\n", "a case type file is a mapping"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"   \n", "empty"),
        (b"a: &x [1, 2]\nb: [*x, *x]\n", "YAML aliases (*name) are not accepted"),
    ],
    ids=["yaml", "not-a-mapping", "binary", "empty", "aliases"],
)
async def test_a_bad_upload_shows_its_problems(
    browser: Browser, history: str, content: bytes, shown: str
) -> None:
    client = await browser("maria")
    response = await upload(client, case_type=history, content=content, filename="bad.yaml")
    assert response.status_code == 422
    assert 'data-testid="whatif-problems"' in response.text
    assert shown in response.text
    assert "/tmp" not in response.text


async def test_an_invalid_draft_shows_the_registry_problems(
    browser: Browser, history: str, tmp_path: Path
) -> None:
    def broken(raw: Raw) -> None:
        raw["name"] = history
        raw["stages"][2]["calendar"] = "moon_hours"
        raw["stages"][3]["when"] = {"field": "nowhere.field", "eq": 1}

    draft = write_draft(tmp_path, broken).read_bytes()
    client = await browser("maria")
    response = await upload(client, case_type=history, content=draft, filename="mine.yaml")
    other = await upload(client, case_type="client_onboarding", content=draft)
    assert response.status_code == 422
    assert "the uploaded draft (mine.yaml)" in response.text
    assert "unknown calendar" in response.text and "nowhere.field" in response.text
    assert "/tmp/" not in response.text
    assert other.status_code == 422
    assert "needs a draft of client_onboarding" in other.text


async def test_too_large_and_csrf(browser: Browser, history: str) -> None:
    client = await browser("maria")
    big = await upload(client, case_type=history, content=b"#" * (MAX_DRAFT_BYTES + 1))
    assert big.status_code == 413
    assert "too large" in big.text
    no_token = await client.post(
        PAGE,
        data={"case_type": history},
        files={"draft": ("d.yaml", b"name: x\n", "application/yaml")},
    )
    assert no_token.status_code == 400
    assert "The form expired" in no_token.text
    missing = await client.post(PAGE, data={"csrf_token": await page_csrf(client, PAGE)})
    assert missing.status_code == 422
    assert "Choose a case type" in missing.text and "Choose the draft" in missing.text


@pytest.mark.parametrize("username", ["rita", "ravi"])
async def test_other_roles_are_refused(browser: Browser, username: str) -> None:
    client = await browser(username)
    page = await client.get(PAGE)
    assert page.status_code == 403
    posted = await client.post(PAGE, data={})
    assert posted.status_code == 403


async def test_signed_out_goes_to_sign_in(whatif_app: FastAPI) -> None:
    async with client_for(whatif_app) as client:
        page = await client.get(PAGE)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login")
