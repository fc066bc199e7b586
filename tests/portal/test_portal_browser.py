"""The portal in a real browser: headless Chromium against uvicorn, test Postgres, the Temporal
dev server and an in-process worker. A client opens the link, uploads the checklist and watches
the case move on; in the message centre they see the unread count, read a message and the
count goes down. Screenshots go to .data/screenshots/portal-*.png."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from store.db import SessionFactory
from store.models import NotificationRow
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, serve
from tests.browser import SHOTS as SCREENSHOTS
from tests.conftest import RunningWorker, new_ref, running_worker, test_settings
from tests.documents import real_documents as docs
from tests.portal.conftest import build_app, make_case, token_for

pytestmark = pytest.mark.e2e

CLIENT_APP = {"X-API-Key": "dev-client-app-key"}
CASE_MANAGER = {"X-API-Key": "dev-case-manager-key"}
STEP = re.compile(r"Step (\d+) of (\d+)")


@dataclass
class Served:
    base_url: str
    settings: Settings


@pytest.fixture
async def stack(
    database_url: str,
    dev_server_env: Any,
    sessions: SessionFactory,
    tmp_path: Path,
) -> AsyncIterator[Served]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the browser test needs Debian's chromium")
    async with running_worker(dev_server_env.client, sessions, test_settings()) as worker:
        settings = _server_settings(database_url, dev_server_env, worker, tmp_path)
        # the app's lifespan opens its own DB engine and Temporal client from ``settings``
        app = build_app(settings, sessions, dev_server_env.client)
        async with serve(app, port=settings.api_port) as base_url:
            yield Served(base_url=base_url, settings=settings)


def _server_settings(
    database_url: str, dev_server_env: Any, worker: RunningWorker, tmp_path: Path
) -> Settings:
    from tests.e2e.conftest import free_port

    return test_settings(
        database_url=database_url,
        temporal_address=dev_server_env.client.service_client.config.target_host,
        temporal_task_queue=worker.task_queue,
        data_dir=tmp_path,
        # the worker (started with ``test_settings()``) reads uploads from its settings' blob
        # folder: the API stores them there
        blob_dir=test_settings().data_dir / "blobs",
        api_port=free_port(),
    )


async def current_step(page: Any) -> int:
    found = STEP.search(await page.inner_text("#case-step"))
    assert found, "no step line on the page"
    return int(found.group(1))


async def reload_until(page: Any, predicate: Any, *, timeout: float = 30) -> None:
    """Reload the page (as a client would) until ``predicate(page)`` holds, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate(page):
            return
        if time.monotonic() > deadline:
            text = await page.inner_text("main")
            raise AssertionError(f"the page never changed as expected:\n{text[:2000]}")
        await page.wait_for_timeout(500)
        await page.reload()


async def _open_case(http: httpx.AsyncClient, stack: Served, prefix: str) -> tuple[str, str]:
    """An individual standard case for Ada Lovelace, opened by the client app; its portal link."""
    ref = new_ref(prefix)
    created = await http.post(
        "/cases",
        headers=CLIENT_APP,
        json={
            "reference": ref,
            "client": {
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "phone": "+447700900123",
                "client_type": "individual",
                "tier": "standard",
                "country": "GB",
            },
        },
    )
    assert created.status_code == 201, created.text
    return ref, f"{stack.base_url}/portal/{token_for(stack.settings, ref)}"


async def test_client_uploads_documents_and_sees_the_case_move_on(stack: Served):
    from playwright.async_api import FilePayload, async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20) as http:
        ref, link = await _open_case(http, stack, "WEB")

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                context = await browser.new_context(viewport={"width": 1100, "height": 900})
                page = await context.new_page()
                await page.goto(link)

                async def at_documents(p: Any) -> bool:
                    return await current_step(p) == 2

                await reload_until(page, at_documents)
                assert "Step 2 of 6" in await page.inner_text("#case-step")
                assert "Waiting for your documents" in await page.inner_text("#case-status")
                checklist = await page.inner_text("#checklist")
                assert "Government-issued photo ID" in checklist
                assert "Proof of address" in checklist
                assert await page.locator('#checklist li[data-status="missing"]').count() == 2
                await page.screenshot(
                    path=str(SCREENSHOTS / "portal-1-waiting.png"), full_page=True
                )

                today = date.today()
                await page.select_option("#kind", "government_id")
                await page.set_input_files(
                    "#file",
                    files=FilePayload(
                        name="passport.pdf", mimeType="application/pdf", buffer=docs.passport_pdf()
                    ),
                )
                await page.fill("#issued_on", str(today - timedelta(days=400)))
                await page.fill("#expires_on", str(today + timedelta(days=3000)))
                await page.click("button:has-text('Upload')")
                await page.wait_for_selector(".notice")
                assert "we received your document" in await page.inner_text(".notice")
                status = await page.get_attribute(
                    '#checklist li[data-kind="government_id"]', "data-status"
                )
                assert status in ("received", "accepted")
                await page.screenshot(
                    path=str(SCREENSHOTS / "portal-2-one-uploaded.png"), full_page=True
                )

                await page.select_option("#kind", "proof_of_address")
                await page.set_input_files(
                    "#file",
                    files=FilePayload(
                        name="bill.pdf", mimeType="application/pdf", buffer=docs.bill_pdf()
                    ),
                )
                await page.fill("#issued_on", str(today - timedelta(days=10)))
                await page.click("button:has-text('Upload')")
                await page.wait_for_selector(".notice")

                async def past_documents(p: Any) -> bool:
                    return await current_step(p) > 2

                await reload_until(page, past_documents)
                # accepted documents: the documents step is done and asks for nothing more
                assert await page.locator('#checklist li[data-status="missing"]').count() == 0
                assert "Please upload" not in await page.inner_text("#documents")
                assert "Nothing needed from you right now" in await page.inner_text("#documents")
                await page.screenshot(
                    path=str(SCREENSHOTS / "portal-3-progressed.png"), full_page=True
                )

                # straight-through compliance and account setup; then staff sign off, unless
                # the machine-verified documents let the case sign itself off (auto_complete)
                async def at_final_review(p: Any) -> bool:
                    return await current_step(p) >= 5

                await reload_until(page, at_final_review)
                if "Complete" not in await page.inner_text("#case-status"):
                    signed = await http.post(
                        f"/cases/{ref}/final-review",
                        headers=CASE_MANAGER,
                        json={"reviewer": "fred"},
                    )
                    assert signed.status_code in (200, 202, 409), signed.text

                async def completed(p: Any) -> bool:
                    return "Complete" in await p.inner_text("#case-status")

                await reload_until(page, completed)
                assert "Step 6 of 6" in await page.inner_text("#case-step")
                await page.check("input[name=score][value='9']")
                await page.fill("#comment", "Quick and clear.")
                await page.locator("#feedback").screenshot(
                    path=str(SCREENSHOTS / "portal-4-survey.png")
                )
                await page.click("button:has-text('Send feedback')")
                await page.wait_for_selector(".notice")
                assert "Thank you for your feedback" in await page.inner_text(".notice")
                await page.screenshot(
                    path=str(SCREENSHOTS / "portal-5-feedback.png"), full_page=True
                )

                phone = await browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
                )
                mobile = await phone.new_page()
                await mobile.goto(link)
                await mobile.screenshot(
                    path=str(SCREENSHOTS / "portal-6-mobile.png"), full_page=True
                )
            finally:
                await browser.close()


async def test_portal_shows_a_rejection_then_asks_for_nothing_after_a_waiver(stack: Served):
    """The report's portal, in a browser: an expired passport is rejected with its reason and
    the upload form stays; once a case manager waives verification, "What we need from you"
    asks for nothing and offers no upload form."""
    from playwright.async_api import FilePayload, async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20) as http:
        ref, link = await _open_case(http, stack, "WVR")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await (await browser.new_context()).new_page()
                await page.goto(link)

                async def at_documents(p: Any) -> bool:
                    return await current_step(p) == 2

                await reload_until(page, at_documents)
                expired = date.today() - timedelta(days=30)
                await page.select_option("#kind", "government_id")
                await page.set_input_files(
                    "#file",
                    files=FilePayload(
                        name="passport.pdf",
                        mimeType="application/pdf",
                        buffer=docs.passport_pdf(expires=expired),
                    ),
                )
                await page.click("button:has-text('Upload')")
                await page.wait_for_selector(".notice")
                item = '#checklist li[data-kind="government_id"]'

                async def rejected(p: Any) -> bool:
                    return await p.get_attribute(item, "data-status") == "rejected"

                await reload_until(page, rejected)
                said = await page.inner_text(item)
                assert "Reason:" in said and "expired" in said, said
                assert "Please upload a new one." in said
                assert await page.locator("#file").count() == 1  # the upload form is offered
                assert "Government-issued photo ID" in await page.inner_text("#documents")
                await page.screenshot(
                    path=str(SCREENSHOTS / "portal-7-rejected.png"), full_page=True
                )

                waived = await http.post(
                    f"/cases/{ref}/documents/waive",
                    headers=CASE_MANAGER,
                    json={"note": "originals seen at the branch"},
                )
                assert waived.status_code == 200, waived.text

                async def nothing_needed(p: Any) -> bool:
                    return "Nothing needed from you right now" in await p.inner_text("#documents")

                await reload_until(page, nothing_needed)
                assert await page.locator("#file").count() == 0  # no upload form any more
                assert "Please upload" not in await page.inner_text("#documents")
                assert await page.locator('#checklist li[data-status="missing"]').count() == 0
                await page.screenshot(path=str(SCREENSHOTS / "portal-8-waived.png"), full_page=True)
            finally:
                await browser.close()


# ------------------------------------------------------------------ the message centre
@pytest.fixture
async def portal_only(
    database_url: str, dev_server_env: Any, tmp_path: Path
) -> AsyncIterator[Served]:
    """The app served with its own lifespan; no worker (the centre reads only Postgres, and
    the case page falls back to the read model for a case no workflow runs)."""
    require_chromium()
    settings = test_settings(
        database_url=database_url,
        temporal_address=dev_server_env.client.service_client.config.target_host,
        data_dir=tmp_path,
        blob_dir=tmp_path / "blobs",
    )
    async with serve(create_app(settings)) as base_url:
        yield Served(base_url=base_url, settings=settings)


async def _in_app(sessions: SessionFactory, ref: str, subject: str, body: str, at: datetime) -> int:
    async with sessions() as s:
        row = NotificationRow(
            outbox_key=f"{ref}:browser:{uuid.uuid4().hex}",
            case_ref=ref,
            milestone="case_update",
            channel="in_app",
            audience="client",
            subject=subject,
            body_text=body,
            status="sent",
            attempts=1,
            created_at=at,
        )
        s.add(row)
        await s.commit()
        return row.id


async def test_client_sees_the_unread_count_and_reads_a_message(
    portal_only: Served, sessions: SessionFactory
) -> None:
    from playwright.async_api import async_playwright, expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ref = await make_case(sessions, name="Grace Hopper", time_zone="Europe/Berlin")
    now = datetime.now(UTC).replace(microsecond=0)
    await _in_app(
        sessions,
        ref,
        "We have opened your case",
        "Dear Grace Hopper,\n\nThank you - we have opened your case and will be in touch.",
        now - timedelta(hours=3),
    )
    await _in_app(
        sessions,
        ref,
        "Please send your proof of address",
        "Dear Grace Hopper,\n\nTo go on we need a proof of address issued in the last "
        "3 months, such as a utility bill.\n\nKind regards,\nNorthbridge Onboarding",
        now - timedelta(hours=1),
    )
    link = f"{portal_only.base_url}/portal/{token_for(portal_only.settings, ref)}"

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []  # a CSP violation would show here
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            await page.goto(link)
            badge = page.locator("#inbox-badge")
            await expect(badge).to_have_attribute("aria-label", "2 unread messages")
            await expect(badge.locator(".count")).to_have_text("2")
            await expect(page.locator("#inbox-heading")).to_have_text("Messages (2 unread)")
            await page.screenshot(path=str(SCREENSHOTS / "portal-messages-1-badge.png"))

            await page.get_by_role("link", name="2 unread messages").click()
            await expect(page.get_by_role("heading", name="Messages", exact=True)).to_be_visible()
            await expect(page.locator("#centre-summary")).to_contain_text("2 unread")
            items = page.locator("#message-list li.message")
            await expect(items).to_have_count(2)
            await expect(items.first).to_contain_text("Please send your proof of address")
            await expect(page.locator("#message-list li.unread")).to_have_count(2)
            await page.screenshot(
                path=str(SCREENSHOTS / "portal-messages-2-centre.png"), full_page=True
            )

            await page.get_by_role("button", name="Please send your proof of address").click()
            await expect(
                page.get_by_role("heading", name="Please send your proof of address")
            ).to_be_visible()
            await expect(page.locator("#message-body")).to_contain_text(
                "we need a proof of address issued in the last 3 months"
            )
            await expect(badge).to_have_attribute("aria-label", "1 unread message")
            await expect(badge.locator(".count")).to_have_text("1")
            await page.screenshot(
                path=str(SCREENSHOTS / "portal-messages-3-read.png"), full_page=True
            )

            await page.get_by_role("link", name="Back to all messages").click()
            await expect(page.locator("#centre-summary")).to_contain_text("1 unread")
            await expect(page.locator("#message-list li.unread")).to_have_count(1)
            await expect(page.locator("#message-list li.unread")).to_contain_text(
                "We have opened your case"
            )

            await page.get_by_role("button", name="Mark all as read").click()
            await expect(page.locator(".notice")).to_contain_text("marked as read")
            await expect(badge).to_have_attribute("aria-label", "No unread messages")
            await expect(badge.locator(".count")).to_have_count(0)
            await expect(page.locator("#message-list li.unread")).to_have_count(0)

            await page.get_by_role("link", name="Your case", exact=True).click()
            await expect(page.locator("#inbox-heading")).to_have_text("Messages")
            phone = await browser.new_page(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
            )
            await phone.goto(f"{link}/inbox")
            await phone.screenshot(
                path=str(SCREENSHOTS / "portal-messages-4-mobile.png"), full_page=True
            )
            assert errors == []
        finally:
            await browser.close()
