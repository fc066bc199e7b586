"""The portal token is the only credential: one case, never an API key or a console session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from core.settings import Settings
from store.db import SessionFactory
from tests.portal.conftest import csrf_of, make_case, token_for
from tests.security.test_passwords_and_tokens import mint_legacy_token

NOT_VALID = "This link is not valid"


def tampered(token: str) -> str:
    payload, sig = token.rsplit(".", 1)
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return f"{payload}.{flipped}"


def with_later_expiry(settings: Settings, ref: str, token: str) -> str:
    """A longer-lived link's payload (same case) under this link's signature."""
    longer = token_for(settings, ref, ttl=timedelta(days=31))
    return f"{longer.rsplit('.', 1)[0]}.{token.rsplit('.', 1)[1]}"


async def test_bad_links_all_get_the_same_friendly_404(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    good = token_for(portal_settings, ref)
    expired = token_for(
        portal_settings, ref, ttl=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2)
    )
    other_secret = token_for(
        portal_settings.model_copy(update={"portal_secret": portal_settings.session_secret}), ref
    )
    unknown_case = token_for(portal_settings, "P-NO-SUCH-CASE")
    bodies = set()
    for bad in (
        tampered(good),
        with_later_expiry(portal_settings, ref, good),
        expired,
        other_secret,
        unknown_case,
        "not-a-token",
        "a.b.c",
    ):
        response = await api.get(f"/portal/{bad}")
        assert response.status_code == 404, bad
        assert response.headers["content-type"].startswith("text/html")
        assert NOT_VALID in response.text
        lowered = response.text.lower()
        for leak in ("expired on", "signature", "tamper", "unknown case", ref.lower()):
            assert leak not in lowered
        bodies.add(response.text)
    assert len(bodies) == 1, "every bad link must look the same"
    assert (await api.get(f"/portal/{good}")).status_code == 200


async def test_a_legacy_link_from_an_old_email_opens_its_case_until_it_expires(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    secret = portal_settings.portal_secret.get_secret_value()
    now = datetime.now(UTC)
    legacy = mint_legacy_token(ref, secret=secret, ttl=timedelta(days=30), now=now)
    page = await api.get(f"/portal/{legacy}")
    assert page.status_code == 200
    assert ref in page.text
    old = mint_legacy_token(ref, secret=secret, ttl=timedelta(days=30), now=now - timedelta(31))
    refused = await api.get(f"/portal/{old}")
    assert refused.status_code == 404
    assert NOT_VALID in refused.text


async def test_bad_links_are_refused_on_every_form_too(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, status="completed", stage="welcome")
    bad = tampered(token_for(portal_settings, ref))
    for path in ("documents", "preferences", "nps", "inbox/1/read"):
        response = await api.post(f"/portal/{bad}/{path}", data={"csrf": "x", "score": "5"})
        assert response.status_code == 404, path
        assert NOT_VALID in response.text


async def test_a_link_shows_its_own_case_and_never_another(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ada = await make_case(sessions, name="Ada Lovelace")
    bob = await make_case(sessions, name="Bob Other-Client", email="bob@example.com")
    page = await api.get(f"/portal/{token_for(portal_settings, ada)}")
    assert page.status_code == 200
    assert ada in page.text and "Ada Lovelace" in page.text
    assert bob not in page.text and "Bob Other-Client" not in page.text
    assert "bob@example.com" not in page.text


async def test_a_form_token_of_one_case_is_refused_on_another(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ada = token_for(portal_settings, await make_case(sessions, status="completed", stage="welcome"))
    bob = token_for(portal_settings, await make_case(sessions, status="completed", stage="welcome"))
    bobs_csrf = await csrf_of(api, bob)
    response = await api.post(f"/portal/{ada}/nps", data={"csrf": bobs_csrf, "score": "9"})
    assert response.status_code == 403
    assert "Please try again" in response.text


async def test_portal_pages_are_private_and_script_free(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    token = token_for(portal_settings, await make_case(sessions))
    page = await api.get(f"/portal/{token}")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in page.text
    assert 'name="viewport"' in page.text


@pytest.mark.parametrize("how", ["x-api-key", "bearer"])
async def test_a_portal_token_is_not_an_api_key(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory, how: str
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    headers = {"X-API-Key": token} if how == "x-api-key" else {"Authorization": f"Bearer {token}"}
    for method, path in (
        ("GET", f"/cases/{ref}"),
        ("GET", "/cases"),
        ("GET", f"/cases/{ref}/documents"),
        ("GET", f"/cases/{ref}/inbox"),
        ("POST", f"/cases/{ref}/documents-received"),
        ("PUT", f"/cases/{ref}/preferences"),
    ):
        response = await api.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.text)


async def test_a_portal_token_does_not_open_the_console(
    app: FastAPI, api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    attempts = [
        ("/console", {"Authorization": f"Bearer {token}"}),
        (f"/console?token={token}", {}),
        (f"/console/cases/{ref}", {"X-API-Key": token}),
        (f"/console/cases/{ref}?portal={token}", {"Cookie": f"onboarding_console={token}"}),
    ]
    for path, headers in attempts:
        response = await api.get(path, headers=headers)
        if response.status_code in (302, 303, 307):
            assert "/console/login" in response.headers["location"], path
        else:
            assert response.status_code == 401, (path, response.status_code)
        assert "Ada Lovelace" not in response.text
