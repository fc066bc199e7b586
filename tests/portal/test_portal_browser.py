"""The portal in a real browser: headless Chromium against uvicorn, test Postgres, the Temporal
dev server and an in-process worker. A client opens the link, uploads the checklist and watches
the case move on; screenshots go to .data/screenshots/portal-*.png."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from store.db import SessionFactory
from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve
from tests.browser import SHOTS as SCREENSHOTS
from tests.conftest import RunningWorker, new_ref, running_worker, test_settings
from tests.documents import samples
from tests.portal.conftest import build_app, token_for

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
        blob_dir=tmp_path / "blobs",
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


async def test_client_uploads_documents_and_sees_the_case_move_on(stack: Served):
    from playwright.async_api import FilePayload, async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ref = new_ref("WEB")
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20) as http:
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
        link = f"{stack.base_url}/portal/{token_for(stack.settings, ref)}"

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
                        name="passport.jpg", mimeType="image/jpeg", buffer=samples.JPEG
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
                        name="bill.pdf", mimeType="application/pdf", buffer=samples.pdf("bill")
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
                assert "Nothing is needed from you" in await page.inner_text("#documents")
                await page.screenshot(
                    path=str(SCREENSHOTS / "portal-3-progressed.png"), full_page=True
                )

                # straight-through compliance and account setup; then staff sign off
                async def at_final_review(p: Any) -> bool:
                    return await current_step(p) == 5

                await reload_until(page, at_final_review)
                signed = await http.post(
                    f"/cases/{ref}/final-review", headers=CASE_MANAGER, json={"reviewer": "fred"}
                )
                assert signed.status_code in (200, 202), signed.text

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
