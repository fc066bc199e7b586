"""The dashboard in a real browser: an operator signs in and reads SLA compliance by stage
from the chart, over the seeded March 2031 data whose answers tests/dashboard knows."""

from __future__ import annotations

import pytest

from api.app import create_app
from core.settings import DEV_CONSOLE_PASSWORD
from tests.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, require_chromium, serve
from tests.conftest import test_settings
from tests.dashboard.conftest import FROM, TO

pytestmark = pytest.mark.e2e


async def test_dashboard_renders_its_charts_with_data(
    seeded, database_url, dev_server_env, tmp_path
):
    from playwright.async_api import async_playwright, expect

    require_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    settings = test_settings(
        database_url=database_url,
        temporal_address=dev_server_env.client.service_client.config.target_host,
        data_dir=tmp_path,
    )
    async with serve(create_app(settings)) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on(
            "response", lambda r: errors.append(f"{r.status} {r.url}") if r.status == 404 else None
        )
        await page.goto(f"{base}/console/dashboard?from={FROM}&to={TO}")
        await page.fill("input[name=username]", "olga")  # redirected to sign-in first
        await page.fill("input[name=password]", DEV_CONSOLE_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"**/console/dashboard?from={FROM}&to={TO}")

        charts = page.locator("svg[role=img]")
        assert await charts.count() >= 3
        compliance = charts.first
        await expect(compliance).to_be_visible()
        text = await compliance.text_content() or ""
        assert "compliance" in (await compliance.get_attribute("aria-label") or "").lower() or (
            "SLA" in text
        )
        assert "%" in text
        bars = compliance.locator("rect")
        assert await bars.count() >= 2
        widths = [float(await b.get_attribute("width") or 0) for b in await bars.all()]
        assert any(w > 0 for w in widths), "no bar has a length: the chart has no data"
        await page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
        await browser.close()
    assert not errors, errors
