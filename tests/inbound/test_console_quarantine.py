"""The console's quarantine page: case managers attach or dismiss (CSRF-checked, flashed),
operators only look, other roles are refused."""

from __future__ import annotations

import html

from tests.inbound.conftest import PDF, Inbound, message_id, post_email
from tests.waiting import eventually
from tests.web.conftest import csrf_from, sign_in


async def _quarantined(inbound: Inbound, ref: str, sender: str) -> int:
    r = await post_email(
        inbound.http,
        sender=sender,
        subject=f"Re: {ref}",
        text="From someone the case does not know",
        mid=message_id(),
        attachments=[("signed-form.pdf", PDF, "application/pdf")],
    )
    assert r.json()["status"] == "quarantined", r.text
    return int(r.json()["id"])


async def test_case_manager_attaches_and_dismisses_from_the_console(inbound: Inbound) -> None:
    ref = await inbound.open_onboarding()
    keep = await _quarantined(inbound, ref, "helper@elsewhere.example")
    drop = await _quarantined(inbound, ref, "spammer@elsewhere.example")

    async with inbound.client() as browser:
        await sign_in(browser, "maria")
        page = await browser.get("/console/inbound")
        assert page.status_code == 200, page.text
        text = html.unescape(page.text)
        assert f'data-testid="inbound-{keep}"' in page.text
        assert "helper@elsewhere.example" in text
        assert f"sender is not a contact of case {ref}" in text
        assert "signed-form.pdf" in text
        assert f'action="/console/inbound/{keep}/attach"' in page.text
        token = csrf_from(page.text)

        expired = await browser.post(
            f"/console/inbound/{keep}/attach", data={"csrf_token": "stale", "case_ref": ref}
        )
        assert expired.status_code == 400
        assert (await inbound.row(keep)).status == "quarantined"

        done = await browser.post(
            f"/console/inbound/{keep}/attach", data={"csrf_token": token, "case_ref": ref}
        )
        assert done.status_code == 303 and done.headers["location"] == "/console/inbound"
        after = await browser.get("/console/inbound")
        assert "Attached the message from helper@elsewhere.example" in html.unescape(after.text)
        row = await inbound.row(keep)
        assert (row.status, row.case_ref, row.decided_by) == ("attached", ref, "maria")
        assert [a["outcome"] for a in row.attachments] == ["document"]
        await eventually(lambda: inbound.events(ref, "client_message"), what="the attached message")

        # a refusal is flashed, not an error page: no such case
        missing = await browser.post(
            f"/console/inbound/{drop}/attach",
            data={"csrf_token": token, "case_ref": "NOPE-000000"},
        )
        assert missing.status_code == 303
        flashed = html.unescape((await browser.get("/console/inbound")).text)
        assert "Not done: no case NOPE-000000" in flashed

        gone = await browser.post(
            f"/console/inbound/{drop}/dismiss", data={"csrf_token": token, "reason": "spam"}
        )
        assert gone.status_code == 303
        row = await inbound.row(drop)
        assert (row.status, row.decided_by) == ("dismissed", "maria")
        assert row.reason is not None and row.reason.endswith("; dismissed: spam")
        listing = await browser.get("/console/inbound")
        assert f'data-testid="inbound-{drop}"' not in listing.text
        assert f'data-testid="inbound-{keep}"' not in listing.text


async def test_operators_look_and_other_roles_are_refused(inbound: Inbound) -> None:
    ref = await inbound.open_onboarding()
    held = await _quarantined(inbound, ref, "someone@elsewhere.example")

    async with inbound.client() as browser:
        await sign_in(browser, "olga")  # operator: reads, no forms, may not decide
        page = await browser.get("/console/inbound")
        assert page.status_code == 200
        assert f'data-testid="inbound-{held}"' in page.text
        assert f'action="/console/inbound/{held}/attach"' not in page.text
        refused = await browser.post(
            f"/console/inbound/{held}/dismiss",
            data={"csrf_token": csrf_from(page.text), "reason": "x"},
        )
        assert refused.status_code == 403
    assert (await inbound.row(held)).status == "quarantined"

    async with inbound.client() as browser:
        await sign_in(browser, "rita")  # compliance reviewer: not the quarantine's
        assert (await browser.get("/console/inbound")).status_code == 403

    async with inbound.client() as browser:  # not signed in: to the sign-in page
        anonymous = await browser.get("/console/inbound")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/console/login")
