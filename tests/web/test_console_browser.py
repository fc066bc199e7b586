"""The console in a real browser: headless Chromium against uvicorn (its own lifespan, so its
own DB engine and Temporal client), the test Postgres, the Temporal dev server and an
in-process worker. Sign in as a case manager, pause a case with a reason, resume it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from core.settings import DEV_CONSOLE_PASSWORD
from schemas.enums import Stage
from store.db import SessionFactory
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, serve
from tests.conftest import running_worker, test_settings
from tests.factories import start_case, wait_for_state

pytestmark = pytest.mark.e2e


@dataclass
class LiveConsole:
    base_url: str
    ref: str
    handle: Any


@pytest.fixture
async def live_console(
    database_url: str, dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> AsyncIterator[LiveConsole]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: the console browser test needs it")
    async with running_worker(dev_server_env.client, sessions, test_settings()) as worker:
        settings = test_settings(
            database_url=database_url,
            temporal_address=dev_server_env.client.service_client.config.target_host,
            temporal_task_queue=worker.task_queue,
            data_dir=tmp_path,
            blob_dir=tmp_path / "blobs",
        )
        ref, handle = await start_case(dev_server_env, worker, name="Grace Hopper")
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        async with serve(create_app(settings)) as base_url:
            yield LiveConsole(base_url=base_url, ref=ref, handle=handle)


async def test_sign_in_pause_and_resume_in_a_browser(live_console: LiveConsole) -> None:
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    base, ref = live_console.base_url, live_console.ref
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            # a case link while signed out goes to the sign-in page, then back to the case
            await page.goto(f"{base}/console/cases/{ref}")
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "console-login.png"))
            await page.get_by_label("Username").fill("maria")
            await page.get_by_label("Password").fill(DEV_CONSOLE_PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page).to_have_url(f"{base}/console/cases/{ref}")
            await expect(page.get_by_test_id("whoami")).to_have_text("Maria Case-Manager")

            badge = page.get_by_test_id("sla-badge")
            await expect(badge).to_have_attribute("data-state", "on_track")
            await expect(badge).to_contain_text("On track")
            await expect(badge).to_contain_text("left")
            await page.screenshot(path=str(SHOTS / "console-case.png"), full_page=True)

            # pause with a reason: the badge turns "paused"
            pause_form = page.get_by_test_id("pause-form")
            await pause_form.get_by_label("Reason (required)").fill("waiting for legal")
            await pause_form.get_by_role("button", name="Pause case").click()
            await expect(page.get_by_test_id("flash")).to_contain_text("Case paused")
            await expect(badge).to_have_attribute("data-state", "paused")
            await expect(badge).to_contain_text("Paused")
            await expect(page.get_by_test_id("case-status")).to_have_text("Paused")
            await expect(page.get_by_test_id("timeline")).to_contain_text(
                "Paused by maria: waiting for legal"
            )
            await page.screenshot(path=str(SHOTS / "console-paused.png"), full_page=True)

            # resume: the badge leaves "paused"
            await page.get_by_role("button", name="Resume case").click()
            await expect(page.get_by_test_id("flash")).to_contain_text("Case resumed")
            await expect(badge).not_to_have_attribute("data-state", "paused")
            await expect(badge).not_to_contain_text("Paused")
            await expect(page.get_by_test_id("timeline")).to_contain_text("Resumed by maria")
            await page.screenshot(path=str(SHOTS / "console-resumed.png"), full_page=True)

            # the queue shows the case with its badge; my tasks opens
            await page.get_by_role("link", name="Queue", exact=True).first.click()
            # the shared test database holds hundreds of cases, time-skipped ones dated
            # years ahead: filter to live cases, as a case manager would
            await page.locator("#f-status").select_option(["open", "waiting_on_client"])
            await page.get_by_role("button", name="Apply").click()
            row = page.locator(f'tr[data-ref="{ref}"]')
            await expect(row).to_contain_text("Grace Hopper")
            await expect(row.get_by_test_id("queue-sla")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "console-queue.png"), full_page=True)
            await page.get_by_role("link", name="My tasks").click()
            await expect(page.get_by_role("heading", name="Assigned to me")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "console-tasks.png"), full_page=True)

            await page.get_by_role("button", name="Sign out").click()
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            assert not errors, f"browser console errors: {errors}"
        finally:
            await browser.close()
