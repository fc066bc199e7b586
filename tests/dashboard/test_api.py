"""The dashboard over HTTP, in process: auth, validation, JSON figures and the HTML page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Request

from api.app import create_app
from api.deps import SESSION_USER
from store.db import SessionFactory
from tests.conftest import test_settings
from tests.dashboard.conftest import Seeded

OPERATOR = {"X-API-Key": "dev-operator-key"}
MANAGER = {"X-API-Key": "dev-case-manager-key"}
CLIENT = {"X-API-Key": "dev-client-app-key"}
WINDOW = {"from": "2031-03-01", "to": "2031-04-01"}


@pytest.fixture
async def api(sessions: SessionFactory, dev_server_env: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = test_settings()
    app = create_app(settings)

    @app.get("/_test/sign-in/{username}")
    async def sign_in(username: str, request: Request) -> dict[str, str]:
        """Stands in for the console's login: puts a user in the signed session cookie."""
        request.session[SESSION_USER] = username
        return {"ok": username}

    # ASGITransport does not run the lifespan: hand the app its state directly
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.temporal = dev_server_env.client
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_json_auth_and_validation(api: httpx.AsyncClient, seeded: Seeded) -> None:
    assert (await api.get("/dashboard", params=WINDOW)).status_code == 401
    assert (await api.get("/dashboard", params=WINDOW, headers=CLIENT)).status_code == 403
    bad = await api.get(
        "/dashboard", params={"from": "2031-04-01", "to": "2031-03-01"}, headers=OPERATOR
    )
    assert bad.status_code == 422
    same = await api.get(
        "/dashboard", params={"from": "2031-04-01", "to": "2031-04-01"}, headers=OPERATOR
    )
    assert same.status_code == 422
    garbage = await api.get("/dashboard", params={"from": "yesterday"}, headers=OPERATOR)
    assert garbage.status_code == 422
    assert (
        await api.get("/dashboard", params={"tier": "gold"}, headers=OPERATOR)
    ).status_code == 422
    # default window: the last 30 days
    default = await api.get("/dashboard", headers=MANAGER)
    assert default.status_code == 200
    f = default.json()["filters"]
    assert (f["client_type"], f["tier"]) == (None, None)


async def test_json_figures(api: httpx.AsyncClient, seeded: Seeded) -> None:
    resp = await api.get("/dashboard", params=WINDOW, headers=OPERATOR)
    assert resp.status_code == 200
    body = resp.json()
    stages = {s["stage"]: s for s in body["stages"]}
    assert stages["document_collection"]["sla_compliance_pct"] == pytest.approx(60.0)
    assert stages["compliance_review"]["p90_active_seconds"] == pytest.approx(3545.0)
    assert [r["stage"] for r in body["bottlenecks"]["by_active_time"]][:2] == [
        "compliance_review",
        "document_collection",
    ]
    assert body["automation"]["automation_rate_pct"] == pytest.approx(40.0)
    assert body["nps"]["nps"] == pytest.approx(40.0)
    assert body["end_to_end"]["completed_cases"] == 4
    assert body["at_risk"]["cases"][0]["ref"] == seeded.refs["I"]

    filtered = await api.get(
        "/dashboard",
        params={**WINDOW, "client_type": "business", "tier": "premium"},
        headers=OPERATOR,
    )
    assert filtered.json()["bottlenecks"]["dominant"] == "document_collection"
    assert filtered.json()["nps"]["responses"] == 2


async def test_html_page(api: httpx.AsyncClient, seeded: Seeded) -> None:
    resp = await api.get("/console/dashboard", params=WINDOW, headers=OPERATOR)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert html.count("<svg id=") == 4
    assert '<title id="chart-compliance-title">SLA compliance by stage</title>' in html
    assert 'role="img"' in html and "aria-labelledby" in html
    for name in ("Document collection", "Compliance review", "Account setup", "Final review"):
        assert name in html
    # compliance bars: labelled percentages, coloured by threshold
    assert "60.0%" in html and "66.7%" in html and "100.0%" in html
    assert re.search(r'class="bar bad"[^>]*/>\s*<text class="value"[^>]*>60.0%', html)
    assert re.search(r'class="bar good"[^>]*/>\s*<text class="value"[^>]*>100.0%', html)
    assert "no SLA" in html  # final review had no SLA visits
    # at-risk table, tiles, filter form; nothing loaded from elsewhere
    assert seeded.refs["I"] in html and seeded.refs["J"] not in html
    assert "+40" in html and "40.0%" in html
    assert 'name="client_type"' in html and 'value="2031-03-01"' in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")

    filtered = await api.get(
        "/console/dashboard",
        params={**WINDOW, "client_type": "business", "tier": ""},
        headers=OPERATOR,
    )
    assert filtered.status_code == 200
    assert '<option value="business" selected>' in filtered.text
    assert "adds the most time and the most breaches" in filtered.text


async def test_html_sign_in_redirect_and_session(api: httpx.AsyncClient, seeded: Seeded) -> None:
    resp = await api.get("/console/dashboard", params=WINDOW)
    assert resp.status_code == 303
    assert resp.headers["location"] == (
        "/console/login?next=%2Fconsole%2Fdashboard%3Ffrom%3D2031-03-01%26to%3D2031-04-01"
    )
    assert (await api.get("/console/dashboard", headers=CLIENT)).status_code == 403
    # a signed-in console user (session cookie, no key) gets the page
    await api.get("/_test/sign-in/olga")
    page = await api.get("/console/dashboard", params=WINDOW)
    assert page.status_code == 200
    assert "Olga Operator" in page.text
    api.cookies.clear()


STP_WINDOW = {"from": "2032-09-01", "to": "2032-10-01"}


def _row(html: str, table: str, header: str) -> list[str]:
    """The cells of one row (by its header) of one table of the page."""
    body = html.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    row = re.search(rf"<th scope=\"row\"[^>]*>{re.escape(header)}.*?</tr>", body, re.S)
    assert row is not None, f"no row {header!r} in {table}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[0])]


async def test_json_straight_through(api: httpx.AsyncClient, stp_seeded: Seeded) -> None:
    resp = await api.get("/dashboard", params=STP_WINDOW, headers=OPERATOR)
    assert resp.status_code == 200
    st = resp.json()["straight_through"]
    assert st["reference"] == {"stp_rate_pct": 92.0, "manual_gate_rate_pct": 8.0}
    assert (st["overall"]["completed_cases"], st["overall"]["straight_through_cases"]) == (7, 3)
    assert st["overall"]["median_seconds_to_complete"] == 21600.0
    individual = next(s for s in st["by_segment"] if s["value"] == "individual")
    assert individual["dimension"] == "client_type"
    assert individual["stp_rate_pct"] == pytest.approx(66.667, abs=1e-3)
    assert individual["manual_gate_rate_pct"] == pytest.approx(33.333, abs=1e-3)
    assert [w["week"] for w in st["by_week"]] == [f"2032-W{n}" for n in range(36, 41)]

    two = await api.get("/dashboard", params={**STP_WINDOW, "weeks": 2}, headers=OPERATOR)
    assert [w["week"] for w in two.json()["straight_through"]["by_week"]] == [
        "2032-W39",
        "2032-W40",
    ]
    assert two.json()["filters"]["weeks"] == 2
    for bad in ("0", "54", "many"):
        wrong = await api.get("/dashboard", params={**STP_WINDOW, "weeks": bad}, headers=OPERATOR)
        assert wrong.status_code == 422, bad


async def test_html_straight_through(api: httpx.AsyncClient, stp_seeded: Seeded) -> None:
    await api.get("/_test/sign-in/olga")  # a signed-in console user
    try:
        resp = await api.get("/console/dashboard", params=STP_WINDOW)
    finally:
        api.cookies.clear()
    assert resp.status_code == 200
    html = resp.text
    assert "Straight-through processing" in html
    # the reference team's figures head the columns, and the tile
    assert "(reference 92.0%)" in html and "(reference 8.0%)" in html
    assert re.search(r'id="tile-stp".*?42\.9%.*?3 of 7 completed cases', html, re.S)
    # completed, straight through, STP rate, vs reference, manual gate, median
    assert _row(html, "stp-segments", "All cases") == [
        "7",
        "3",
        "42.9%",
        "-49.1 pts",
        "57.1%",
        "6.0 h",
    ]
    assert _row(html, "stp-segments", "Client type: Individual") == [
        "3",
        "2",
        "66.7%",
        "-25.3 pts",
        "33.3%",
        "12.0 h",
    ]
    assert _row(html, "stp-segments", "Tier: Premium") == [
        "4",
        "1",
        "25.0%",
        "-67.0 pts",
        "75.0%",
        "3.5 h",
    ]
    assert _row(html, "stp-segments", "Case type: Order approval")[:3] == ["1", "1", "100.0%"]
    # by week: ISO weeks, the cut ones with their days
    assert _row(html, "stp-weeks", "2032-W37") == ["2", "2", "100.0%", "+8.0 pts", "0.0%", "9.0 h"]
    assert _row(html, "stp-weeks", "2032-W38") == ["1", "0", "0.0%", "-92.0 pts", "100.0%", "2.0 d"]
    assert "2032-W36 <span" in html and "01 Sep to 05 Sep" in html
    assert 'name="weeks"' in html and 'value="8"' in html
