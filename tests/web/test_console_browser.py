"""The console in a real browser: headless Chromium against uvicorn (its own lifespan, so its
own DB engine and Temporal client), the test Postgres, the Temporal dev server and an
in-process worker. Sign in as a case manager, pause a case with a reason, resume it; take a
task from the team queue on My work and complete it there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from core.settings import DEV_CONSOLE_PASSWORD
from schemas.enums import Stage
from store import work
from store.db import SessionFactory
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, serve
from tests.conftest import running_worker, test_settings
from tests.engine.helpers import start, wait_for
from tests.factories import start_case, wait_for_state
from tests.waiting import eventually
from tests.web.conftest import mark_started

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


TASK = "collect_vendor_info"  # a case manager's task, the vendor assessment's first step


@pytest.fixture
async def live_vendor_case(
    database_url: str, dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> AsyncIterator[LiveConsole]:
    """A vendor due diligence case (case engine) whose first task waits in the case managers'
    queue, and the console serving it."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: the console browser test needs it")
    client = dev_server_env.client
    async with running_worker(client, sessions, test_settings()) as worker:
        settings = test_settings(
            database_url=database_url,
            temporal_address=client.service_client.config.target_host,
            temporal_task_queue=worker.task_queue,
            data_dir=tmp_path,
            blob_dir=tmp_path / "blobs",
        )
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "vendor_due_diligence",
            data={"vendor_name": "Lovelace Engines Ltd"},
            started=worker.started_cases,
        )
        await wait_for(
            handle, lambda s: any(e.key == TASK and e.status == "active" for e in s.elements)
        )
        await mark_started(sessions, ref)

        async def queued() -> bool:
            async with sessions() as s:
                items = await work.unassigned_for(s, "case_manager")
            return any(i.case_ref == ref and i.item == TASK for i in items)

        await eventually(queued, what=f"{ref}'s task in the case managers' queue")
        async with serve(create_app(settings)) as base_url:
            yield LiveConsole(base_url=base_url, ref=ref, handle=handle)


async def test_take_a_task_from_the_team_queue_and_complete_it(
    live_vendor_case: LiveConsole,
) -> None:
    from playwright.async_api import async_playwright, expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    base, ref = live_vendor_case.base_url, live_vendor_case.ref
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            # a case manager signs in and opens My work from the navigation
            await page.goto(f"{base}/console/login")
            await page.get_by_label("Username").fill("maria")
            await page.get_by_label("Password").fill(DEV_CONSOLE_PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_test_id("whoami")).to_have_text("Maria Case-Manager")
            await page.get_by_role("link", name="My work").click()
            await expect(page).to_have_url(f"{base}/console/work")
            await expect(page.get_by_role("heading", name="My work", exact=True)).to_be_visible()

            # the task waits in the team queue; she takes it
            queue = page.get_by_test_id("team-queue")
            queued = queue.locator(f'tr[data-ref="{ref}"][data-item="{TASK}"]')
            await expect(queued).to_contain_text("Collect the vendor's company details")
            await page.screenshot(path=str(SHOTS / "console-my-work-queue.png"), full_page=True)
            await page.get_by_test_id(f"take-{ref}-{TASK}").get_by_role("button").click()
            await expect(page.get_by_test_id("flash")).to_contain_text("taken by maria")
            await expect(queued).to_have_count(0)
            mine = page.get_by_test_id("my-work").locator(f'tr[data-ref="{ref}"]')
            await expect(mine).to_contain_text("Collect the vendor's company details")
            await expect(mine.get_by_test_id("work-sla")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "console-my-work-taken.png"), full_page=True)

            # she completes it from My work: it leaves her list
            complete = page.get_by_test_id(f"complete-{ref}-{TASK}")
            await complete.get_by_label("Note for").fill("company details on file")
            await complete.get_by_role("button", name="Complete").click()
            await expect(page.get_by_test_id("flash")).to_contain_text(f"Task {TASK} completed")
            await expect(mine).to_have_count(0)
            await page.screenshot(path=str(SHOTS / "console-my-work-done.png"), full_page=True)

            # the case page shows the task done, by her
            await page.goto(f"{base}/console/cases/{ref}")
            step = page.get_by_test_id("elements").locator(f'tr[data-element="{TASK}"]')
            await expect(step).to_have_attribute("data-status", "done")
            await expect(step).to_contain_text("Done")
            await expect(page.locator(f'#tasks tr[data-task="{TASK}"]')).to_contain_text("✓ maria")
            await expect(page.get_by_test_id("timeline")).to_contain_text(
                f"maria completed task {TASK}"
            )
            await page.screenshot(path=str(SHOTS / "console-task-done.png"), full_page=True)

            # the team workload page lists her among the case managers
            await page.get_by_role("link", name="Team workload").click()
            await expect(page.get_by_role("heading", name="Team workload")).to_be_visible()
            team = page.get_by_test_id("workload-case_manager")
            await expect(team.locator('tr[data-person="maria"]')).to_contain_text("Maria")
            await expect(page.get_by_test_id("rebalance-form")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "console-workload.png"), full_page=True)
            assert not errors, f"browser console errors: {errors}"
        finally:
            await browser.close()
