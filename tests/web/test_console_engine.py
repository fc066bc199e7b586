"""The console on cases of the generic case engine: any case type's pinned stages, the current
stage's elements and the actions the case allows now, with the workflow's refusals shown."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from api.services.documents import get_blob_store, new_document_id
from integrations.blobstore import case_document_key
from schemas.engine_commands import DocumentsUploaded
from store.db import SessionFactory
from store.models import Case, DocumentRow
from tests.conftest import running_worker, test_settings
from tests.documents import real_documents as docs
from tests.engine.helpers import registry, start, wait_for
from tests.waiting import eventually
from tests.web.conftest import mark_started

BIG_ORDER = {"order_id": "ORD-1", "order_value": 75000, "currency": "GBP", "items": 3}


async def test_order_approval_case_page_shows_its_stages_and_approves(
    console_as: Any, sessions: SessionFactory, dev_server_env: Any
) -> None:
    client = dev_server_env.client
    async with running_worker(client, sessions, test_settings()) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=BIG_ORDER,
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: s.stage == "approval" and "decide" in s.allowed_actions)
        await mark_started(sessions, ref)
        maria = await console_as("maria")
        page = await maria.client.get(f"/console/cases/{ref}")
        assert page.status_code == 200, page.text
        html = page.text
        # the case type, its version and its pinned stages, the current one marked
        version = registry().get("order_approval").version  # the version the case pinned
        assert f"Order approval · version {version}" in html
        for key in ("intake", "approval", "fulfilment"):
            assert f'data-stage="{key}"' in html
        assert 'data-stage="intake" data-state="done"' in html
        assert 'data-stage="approval" data-state="current" aria-current="step"' in html
        assert 'data-stage="fulfilment" data-state="upcoming"' in html
        assert 'data-testid="case-stage">Order approval<' in html
        assert 'data-testid="sla-detail">8h 00m budget' in html
        explained = html.split('data-testid="sla-explained">', 1)[1].split("</dd>", 1)[0]
        assert "of 480 working minutes used" in explained and "24/7" in explained
        assert "breach at" in explained and "escalation" in explained
        # the current stage's elements with their status
        assert 'data-element="group_approval" data-status="active"' in html
        assert 'data-element="confirm_availability" data-status="not_applicable"' in html
        # the approve button, with the case type's own reject reasons
        assert 'data-testid="decide-form"' in html and 'value="approve"' in html
        assert 'data-testid="approve-button"' in html
        assert '<option value="out_of_stock">Out of stock</option>' in html
        assert '<option value="customer_cancelled">Customer cancelled</option>' in html
        assert 'data-testid="send-back-form"' in html  # intake is earlier
        assert 'data-testid="waive-form"' not in html  # no documents element here

        # a rejection needs a reason code: refused on the form, nothing sent
        r = await maria.post_form(f"/console/cases/{ref}/decide", decision="reject", note="x")
        assert (
            "Choose a reason for the rejection."
            in (await maria.client.get(f"/console/cases/{ref}")).text
        )
        assert r.status_code == 303

        r = await maria.post_form(
            f"/console/cases/{ref}/decide", decision="approve", element="group_approval"
        )
        after = (await maria.client.get(r.headers["location"])).text
        assert "Approved." in after and "1 of 2 approval(s)" in after
        # the same person cannot approve twice: the workflow's refusal is flashed
        r = await maria.post_form(f"/console/cases/{ref}/decide", decision="approve")
        assert "Not done:" in (await maria.client.get(r.headers["location"])).text

        # a relationship manager may not open a case in the approval stage: a clear 403 page
        ravi = await console_as("ravi")
        refused = await ravi.client.get(f"/console/cases/{ref}")
        assert refused.status_code == 403
        assert "Not allowed" in refused.text and "approval" in refused.text

        # the second approver moves the order on to fulfilment
        rita = await console_as("rita")
        r = await rita.post_form(f"/console/cases/{ref}/decide", decision="approve")
        assert "Approved." in (await rita.client.get(r.headers["location"])).text
        state = await wait_for(handle, lambda s: s.stage != "approval")
        assert state.stage in ("fulfilment",) or state.status == "resolved"


async def test_queue_filters_by_case_type_and_any_stage(
    console_as: Any, sessions: SessionFactory
) -> None:
    from tests.web.conftest import insert_case

    order_ref = await insert_case(sessions, prefix="QO", stage="intake")
    other_ref = await insert_case(sessions, prefix="QO", stage="intake")
    async with sessions() as s:
        await s.execute(
            update(Case).where(Case.ref == order_ref).values(case_type="order_approval")
        )
        await s.commit()
    maria = await console_as("maria")
    page = await maria.client.get(
        "/console", params={"case_type": "order_approval", "stage": "intake"}
    )
    assert page.status_code == 200
    assert f'data-ref="{order_ref}"' in page.text and other_ref not in page.text
    assert '<option value="order_approval" selected>Order approval</option>' in page.text
    assert '<option value="intake" selected>Order intake</option>' in page.text
    assert ">Order intake<" in page.text.split('data-testid="queue"')[1]
    # a well-formed stage no case type declares is still a filter, not an error
    odd = await maria.client.get("/console", params={"stage": "no_such_stage"})
    assert odd.status_code == 200 and "No cases match these filters." in odd.text


async def test_a_case_manager_settles_a_needs_review_document_on_the_case_page(
    console_as: Any, sessions: SessionFactory, dev_server_env: Any
) -> None:
    """Beside a document the machine sent to a person: Accept or Reject (a rejection needs a
    note, refused on the form); the decision goes to the workflow and the page says so."""
    client = dev_server_env.client
    settings = test_settings()
    async with running_worker(client, sessions, settings) as worker:
        ref, handle = await start(
            client, sessions, worker.task_queue, "client_onboarding", started=worker.started_cases
        )
        await wait_for(handle, lambda s: "waive_documents" in s.allowed_actions)
        await mark_started(sessions, ref)
        data = docs.sign_in_screenshot()
        digest = hashlib.sha256(data).hexdigest()
        key = case_document_key(ref, digest)
        get_blob_store(settings).put(key, data)  # where the worker's verify activity reads
        doc_id, older_id = new_document_id(), new_document_id()
        async with sessions.begin() as s:
            s.add(  # an earlier file of the kind, still marked needs_review: superseded
                DocumentRow(
                    id=older_id,
                    case_ref=ref,
                    kind="government_id",
                    filename="old.png",
                    content_type="image/png",
                    size=10,
                    sha256="0" * 64,
                    storage_key="unused",
                    uploaded_by="client",
                    uploaded_at=datetime.now(UTC) - timedelta(days=1),
                    status="needs_review",
                    verdict="needs_review",
                )
            )
            s.add(
                DocumentRow(
                    id=doc_id,
                    case_ref=ref,
                    kind="government_id",
                    filename="passport.png",
                    content_type="image/png",
                    size=len(data),
                    sha256=digest,
                    storage_key=key,
                    uploaded_by="client",
                    uploaded_at=datetime.now(UTC),
                    status="received",
                )
            )
        await handle.signal(
            "documents_uploaded", DocumentsUploaded(actor="client", document_ids=[doc_id])
        )
        await wait_for(handle, lambda s: "review_document" in s.allowed_actions)

        maria = await console_as("maria")
        html = (await maria.client.get(f"/console/cases/{ref}")).text
        assert f'data-testid="review-{doc_id}"' in html
        assert f'data-testid="review-{older_id}"' not in html  # the case does not wait on it
        r = await maria.post_form(
            f"/console/cases/{ref}/documents/review", document_id=doc_id, decision="reject"
        )
        assert r.status_code == 303
        assert (
            "Please say why: the client reads it."
            in (await maria.client.get(f"/console/cases/{ref}")).text
        )
        r = await maria.post_form(
            f"/console/cases/{ref}/documents/review",
            document_id=doc_id,
            decision="accept",
            note="checked on a video call",
        )
        after = (await maria.client.get(r.headers["location"])).text
        assert "Document accepted; the documents will be checked again." in after

        async def status() -> str | None:
            async with sessions() as s:
                row = await s.get(DocumentRow, doc_id, populate_existing=True)
                return row.status if row else None

        assert await eventually(status, lambda got: got == "accepted") == "accepted"
        page = (await maria.client.get(f"/console/cases/{ref}")).text
        assert f'data-testid="review-{doc_id}"' not in page  # settled: no form any more
        assert "accepted on review by" in page
