"""The portal page of a running case, and the client's actions: upload, preferences, inbox."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from api.services.documents import new_document_id
from core.settings import Settings
from schemas.enums import Stage
from store.db import SessionFactory
from store.models import Case, DocumentRow, NotificationRow
from tests.conftest import RunningWorker
from tests.documents import samples
from tests.factories import close_case, start_case, wait_for_state
from tests.portal.conftest import UPLOAD_LIMIT, csrf_of, make_case, token_for, wait_for_case_row
from tests.waiting import eventually

TODAY = date.today()


async def running(dev_server_env: Any, worker: RunningWorker, sessions: SessionFactory, **who: Any):
    """A case waiting in document collection, with its read-model row."""
    ref, handle = await start_case(dev_server_env, worker, **who)
    await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
    await wait_for_case_row(sessions, ref, stage="document_collection")
    return ref, handle


async def upload(
    api: httpx.AsyncClient,
    token: str,
    csrf: str | None,
    kind: str,
    content: bytes,
    filename: str,
    **dates: str,
) -> httpx.Response:
    data = {"kind": kind, **dates}
    if csrf is not None:
        data["csrf"] = csrf
    return await api.post(
        f"/portal/{token}/documents", data=data, files={"file": (filename, content)}
    )


async def test_progress_of_a_running_case(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
):
    ref, handle = await running(dev_server_env, worker, sessions)
    try:
        page = await api.get(f"/portal/{token_for(portal_settings, ref)}")
        assert page.status_code == 200, page.text
        text = page.text
        assert "Step 2 of 6" in text
        assert 'value="1"' in text and 'max="6"' in text  # the progress bar: one step done
        assert "Waiting for your documents" in text
        for step in ("Compliance review", "Setting up your account", "Final check"):
            assert step in text
        assert "Estimated completion" in text
        assert "Government-issued photo ID" in text
        assert "Proof of address (issued within 90 days)" in text
        assert text.count('data-status="missing"') == 2
        assert "Not received yet" in text
        assert 'enctype="multipart/form-data"' in text
        assert "How did we do?" not in text  # NPS only after welcome
    finally:
        await close_case(handle)


async def test_upload_through_the_portal_is_stored_and_listed(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
):
    ref, handle = await running(dev_server_env, worker, sessions)
    token = token_for(portal_settings, ref)
    try:
        csrf = await csrf_of(api, token)
        bill = samples.pdf("Utility bill")
        response = await upload(
            api,
            token,
            csrf,
            "proof_of_address",
            bill,
            "bill.pdf",
            issued_on=str(TODAY - timedelta(days=5)),
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/portal/{token}?notice=uploaded#documents"
        async with sessions() as s:
            row = await s.scalar(select(DocumentRow).where(DocumentRow.case_ref == ref))
        assert row is not None
        assert row.kind == "proof_of_address" and row.uploaded_by == "client"
        assert row.content_type == "application/pdf" and row.size == len(bill)

        page = await api.get(f"/portal/{token}?notice=uploaded")
        assert "we received your document" in page.text
        assert 'data-kind="proof_of_address" data-status="' in page.text
        assert 'data-kind="proof_of_address" data-status="missing"' not in page.text
        assert "Latest file: bill.pdf" in page.text
        assert 'data-kind="government_id" data-status="missing"' in page.text

        again = await upload(
            api,
            token,
            csrf,
            "proof_of_address",
            bill,
            "bill.pdf",
            issued_on=str(TODAY - timedelta(days=5)),
        )
        assert again.headers["location"].endswith("?notice=upload_duplicate#documents")
    finally:
        await close_case(handle)


async def test_upload_refusals_are_friendly(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    csrf = await csrf_of(api, token)

    html = await upload(api, token, csrf, "government_id", samples.HTML, "id.pdf")
    assert html.status_code == 415
    assert "We can only accept PDF, PNG or JPEG files" in html.text
    assert "Step " in html.text  # the page itself, with the message on top

    bad_date = await upload(
        api, token, csrf, "government_id", samples.JPEG, "id.jpg", expires_on="next year"
    )
    assert bad_date.status_code == 422
    assert "expiry date as a date" in bad_date.text

    backwards = await upload(
        api,
        token,
        csrf,
        "government_id",
        samples.JPEG,
        "id.jpg",
        issued_on="2030-01-01",
        expires_on="2029-01-01",
    )
    assert backwards.status_code == 422
    assert "cannot be before the issue date" in backwards.text

    no_kind = await upload(api, token, csrf, "passport-ish", samples.JPEG, "id.jpg")
    assert no_kind.status_code == 422

    over_limit = await upload(
        api, token, csrf, "government_id", samples.pdf("x" * (UPLOAD_LIMIT + 10)), "big.pdf"
    )
    assert over_limit.status_code == 413
    assert "That file is too large" in over_limit.text
    # far over the limit: refused before the body is read, then shown on the page
    huge = await upload(
        api, token, csrf, "government_id", samples.pdf("x" * (2 * UPLOAD_LIMIT)), "big.pdf"
    )
    assert huge.status_code == 303
    assert huge.headers["location"].endswith("?notice=too_large#documents")
    page = await api.get(huge.headers["location"])
    assert "That file is too large" in page.text

    async with sessions() as s:
        assert (await s.scalar(select(DocumentRow).where(DocumentRow.case_ref == ref))) is None


async def test_closed_case_takes_no_uploads(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, status="completed", stage="welcome")
    token = token_for(portal_settings, ref)
    page = await api.get(f"/portal/{token}")
    assert "Step 6 of 6" in page.text and "Complete" in page.text
    assert 'enctype="multipart/form-data"' not in page.text
    csrf = await csrf_of(api, token)
    response = await upload(api, token, csrf, "government_id", samples.JPEG, "id.jpg")
    assert response.status_code == 409
    assert "no longer takes documents" in response.text


async def test_preferences_update(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
):
    ref, handle = await running(dev_server_env, worker, sessions)
    token = token_for(portal_settings, ref)
    try:
        csrf = await csrf_of(api, token)
        response = await api.post(
            f"/portal/{token}/preferences",
            data={
                "csrf": csrf,
                "channels": ["sms", "in_app", ""],
                "language": "de",
                "callback_stages": ["account_setup"],
            },
        )
        assert response.status_code == 303, response.text
        async with sessions() as s:
            case = await s.scalar(select(Case).where(Case.ref == ref))
        assert case is not None
        assert case.profile["contact_preferences"] == {
            "channels": ["sms", "in_app"],
            "language": "de",
            "callback_stages": ["account_setup"],
        }
        page = await api.get(f"/portal/{token}?notice=preferences_saved")
        assert "Your contact preferences are saved." in page.text
        assert '<option value="de" selected>' in page.text

        twice = await api.post(
            f"/portal/{token}/preferences",
            data={"csrf": csrf, "channels": ["email", "email"], "language": "en"},
        )
        assert twice.status_code == 422
        assert "can be chosen only once" in twice.text
        odd = await api.post(
            f"/portal/{token}/preferences",
            data={"csrf": csrf, "channels": ["email"], "language": "xx"},
        )
        assert odd.status_code == 422
    finally:
        await close_case(handle)


async def test_inbox_shows_messages_and_marks_them_read(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
):
    ref, handle = await running(dev_server_env, worker, sessions)
    token = token_for(portal_settings, ref)
    try:

        async def inbox() -> NotificationRow | None:
            async with sessions() as s:
                return await s.scalar(
                    select(NotificationRow).where(
                        NotificationRow.case_ref == ref, NotificationRow.channel == "in_app"
                    )
                )

        row = await eventually(inbox, what="the acknowledgement in the client's inbox")
        assert row is not None
        page = await api.get(f"/portal/{token}")
        assert row.subject is not None and row.subject in page.text
        assert "(1 unread)" in page.text
        csrf = await csrf_of(api, token)

        response = await api.post(f"/portal/{token}/inbox/{row.id}/read", data={"csrf": csrf})
        assert response.status_code == 303
        async with sessions() as s:
            read = await s.scalar(select(NotificationRow).where(NotificationRow.id == row.id))
        assert read is not None and read.read_at is not None
        page = await api.get(f"/portal/{token}")
        assert "unread)" not in page.text

        other = await api.post(f"/portal/{token}/inbox/999999999/read", data={"csrf": csrf})
        assert other.status_code == 404
        assert "That message was not found" in other.text
    finally:
        await close_case(handle)


async def test_forms_without_csrf_get_403(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, status="completed", stage="welcome")
    token = token_for(portal_settings, ref)
    cases = [
        ("documents", {"kind": "government_id"}, {"file": ("id.jpg", samples.JPEG)}),
        ("preferences", {"channels": "email", "language": "en"}, None),
        ("nps", {"score": "9"}, None),
        ("inbox/1/read", {}, None),
        ("proposal", {"decision": "accept"}, None),
        ("messages", {"text": "hello"}, None),
    ]
    for path, data, files in cases:
        for csrf in (None, "0" * 64):
            body = dict(data) if csrf is None else {**data, "csrf": csrf}
            response = await api.post(f"/portal/{token}/{path}", data=body, files=files)
            assert response.status_code == 403, (path, csrf, response.text)
    async with sessions() as s:
        assert (await s.scalar(select(DocumentRow).where(DocumentRow.case_ref == ref))) is None


async def test_rejected_document_shows_its_reason_and_paused_case_says_so(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, status="paused")
    async with sessions() as s:
        s.add(
            DocumentRow(
                id=new_document_id(),
                case_ref=ref,
                kind="government_id",
                filename="old-passport.jpg",
                content_type="image/jpeg",
                size=len(samples.JPEG),
                sha256="0" * 64,
                storage_key="unused",
                uploaded_by="client",
                uploaded_at=datetime.now(UTC),
                status="rejected",
                status_detail="Government-issued photo ID expired on 2020-01-01",
            )
        )
        await s.commit()
    page = await api.get(f"/portal/{token_for(portal_settings, ref)}")
    text = page.text
    assert "Paused by our team" in text
    assert "Estimated completion" not in text
    assert 'data-kind="government_id" data-status="rejected"' in text
    assert "Not accepted" in text
    assert "Reason: Government-issued photo ID expired on 2020-01-01" in text
    assert "Please upload a new one." in text
    assert "Please upload: Government-issued photo ID, Proof of address" in text


async def test_a_case_not_started_yet_is_at_step_one(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, status="draft", stage="acknowledgement")
    page = await api.get(f"/portal/{token_for(portal_settings, ref)}")
    assert "Step 1 of 6" in page.text
    assert "We are opening your case" in page.text
