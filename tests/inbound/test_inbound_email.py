"""Inbound email over HTTP on the real stack: SendGrid posts a reply, it lands on the case
(documents pending verification, a resolved case reopened), a stranger's is quarantined until
a case manager attaches or dismisses it, and nothing is stored twice."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from store.models import Case
from tests.api_engine.conftest import ADMIN, CLIENT, MANAGER, OPERATOR
from tests.inbound.conftest import (
    CLIENT_EMAIL,
    EXE,
    INBOUND_DOMAIN,
    MAX_ATTACHMENTS,
    PDF,
    TOKEN,
    USER,
    Inbound,
    message_id,
    post_email,
)
from tests.waiting import eventually
from tests.web.conftest import insert_case

QUOTED = (
    "Here is my bank statement.\n"
    "\n"
    "On Mon, 1 Dec 2026 at 10:00, Client Onboarding <onboarding@example.com> wrote:\n"
    "> Please upload your documents.\n"
    "> Thank you\n"
)


async def test_reply_with_a_pdf_lands_on_the_case(inbound: Inbound) -> None:
    """(a) A reply to a plus-address with a PDF: the case hears the reply (quoted history
    stripped) and the PDF is a document pending verification."""
    ref = await inbound.open_onboarding()
    mid = message_id()
    r = await post_email(
        inbound.http,
        to=f"Client Onboarding <cases+{ref.lower()}@{INBOUND_DOMAIN}>",
        subject="Re: Action needed: documents",
        text=QUOTED,
        mid=mid,
        attachments=[("statement.pdf", PDF, "application/pdf")],
    )
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert (receipt["status"], receipt["case_ref"], receipt["duplicate"]) == (
        "attached",
        ref,
        False,
    )

    events = await eventually(
        lambda: inbound.events(ref, "client_message"), what="the client's message on the case"
    )
    assert events[0].detail["text"] == "Here is my bank statement."
    assert events[0].actor == f"client:{CLIENT_EMAIL}"

    docs = (await inbound.http.get(f"/cases/{ref}/documents", headers=MANAGER)).json()["items"]
    assert len(docs) == 1
    doc = docs[0]
    assert (doc["filename"], doc["content_type"], doc["kind"]) == (
        "statement.pdf",
        "application/pdf",
        "other",
    )
    assert doc["status"] == "received"  # pending verification
    assert doc["uploaded_by"] == f"client:{CLIENT_EMAIL}"

    [row] = await inbound.rows_for(mid)
    assert (row.status, row.case_ref, row.sender) == ("attached", ref, CLIENT_EMAIL)
    assert row.body_text == "Here is my bank statement."
    assert row.recipient == f"cases+{ref.lower()}@{INBOUND_DOMAIN}"
    assert [(a["outcome"], a["document_id"]) for a in row.attachments] == [("document", doc["id"])]


async def test_a_reply_to_a_resolved_case_reopens_it(inbound: Inbound) -> None:
    """(b) The same kind of reply (the reference in the subject this time) to a resolved
    order: the case type reopens on a client message."""
    ref = await inbound.open_resolved_order()
    r = await post_email(
        inbound.http,
        subject=f"Re: Orders {ref}: your order is on its way",
        text="The parcel never arrived.\n\n> Your order is on its way",
        mid=message_id(),
        attachments=[("delivery-note.pdf", PDF, "application/pdf")],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["case_ref"]) == ("attached", ref)
    reopened = await eventually(
        lambda: inbound.events(ref, "case_reopened"), what=f"{ref} reopened"
    )
    assert reopened[0].actor == f"client:{CLIENT_EMAIL}"
    [message] = await inbound.events(ref, "client_message")
    assert message.detail["text"] == "The parcel never arrived."
    docs = await inbound.documents(ref)
    assert [(d.filename, d.status) for d in docs] == [("delivery-note.pdf", "received")]


async def test_a_strangers_reply_is_quarantined_then_attached_by_a_case_manager(
    inbound: Inbound,
) -> None:
    """(c) Someone who is not a contact of the case: kept, nothing on the case; a case
    manager reads the quarantine and attaches it, files and all."""
    ref = await inbound.open_onboarding()
    mid = message_id()
    r = await post_email(
        inbound.http,
        sender="Mallory <mallory@elsewhere.example>",
        subject=f"Re: Action needed: documents for case {ref}",
        text="I am Ada's accountant, her statement is attached.",
        mid=mid,
        attachments=[("statement.pdf", PDF, "application/pdf")],
    )
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["status"] == "quarantined"
    assert receipt["reason"] == f"sender is not a contact of case {ref}"
    inbound_id = receipt["id"]
    row = await inbound.row(inbound_id)
    assert (row.status, row.case_ref, row.sender) == (
        "quarantined",
        ref,
        "mallory@elsewhere.example",
    )
    assert [a["outcome"] for a in row.attachments] == ["held"]
    assert await inbound.documents(ref) == []
    assert await inbound.events(ref, "client_message") == []

    # case managers and operators read the quarantine; the client app does not
    listed = await inbound.http.get("/inbound/quarantine?limit=200", headers=MANAGER)
    assert listed.status_code == 200, listed.text
    item = next(i for i in listed.json()["items"] if i["id"] == inbound_id)
    assert item["reason"] == f"sender is not a contact of case {ref}"
    assert [a["filename"] for a in item["attachments"]] == ["statement.pdf"]
    assert (await inbound.http.get("/inbound/quarantine", headers=OPERATOR)).status_code == 200
    assert (await inbound.http.get("/inbound/quarantine", headers=CLIENT)).status_code == 403

    # only a case manager (or admin) decides
    body = {"case_ref": ref}
    refused = await inbound.http.post(f"/inbound/{inbound_id}/attach", json=body, headers=OPERATOR)
    assert refused.status_code == 403
    unknown_case = await inbound.http.post(
        f"/inbound/{inbound_id}/attach", json={"case_ref": "NOPE-404404"}, headers=MANAGER
    )
    assert unknown_case.status_code == 404
    assert (
        await inbound.http.post("/inbound/999999999/attach", json=body, headers=MANAGER)
    ).status_code == 404

    attached = await inbound.http.post(f"/inbound/{inbound_id}/attach", json=body, headers=MANAGER)
    assert attached.status_code == 200, attached.text
    view = attached.json()
    assert (view["status"], view["case_ref"]) == ("attached", ref)
    assert view["decided_by"] and view["decided_at"]
    assert view["reason"] == f"sender is not a contact of case {ref}"  # why it was held
    [attachment] = view["attachments"]
    assert attachment["outcome"] == "document" and attachment["document_id"].startswith("doc_")

    events = await eventually(
        lambda: inbound.events(ref, "client_message"), what="the attached message on the case"
    )
    assert events[0].detail["text"] == "I am Ada's accountant, her statement is attached."
    docs = await inbound.documents(ref)
    assert [(d.id, d.status) for d in docs] == [(attachment["document_id"], "received")]

    again = await inbound.http.post(f"/inbound/{inbound_id}/attach", json=body, headers=MANAGER)
    assert again.status_code == 409
    late = await inbound.http.post(
        f"/inbound/{inbound_id}/dismiss", json={"reason": "spam"}, headers=MANAGER
    )
    assert late.status_code == 409
    listed = await inbound.http.get("/inbound/quarantine?limit=200", headers=MANAGER)
    assert inbound_id not in {i["id"] for i in listed.json()["items"]}


async def test_contacts_are_senders_too_and_dismissal_keeps_the_record(inbound: Inbound) -> None:
    """An active additional contact's reply is attached (address case-insensitive); a removed
    contact's is quarantined, and a case manager dismisses it with a reason."""
    ref = await inbound.open_onboarding()
    await inbound.add_contact(ref, "Finance@Acme.example")
    await inbound.add_contact(ref, "gone@acme.example", removed=True)

    ok = await post_email(
        inbound.http,
        sender="Finance <finance@acme.EXAMPLE>",
        subject=f"Re: case {ref}",
        text="Invoice query",
        mid=message_id(),
    )
    assert (ok.json()["status"], ok.json()["case_ref"]) == ("attached", ref)

    gone = await post_email(
        inbound.http,
        sender="gone@acme.example",
        to=f"cases+{ref}@{INBOUND_DOMAIN}",
        subject="hello",
        text="Still me",
        mid=message_id(),
    )
    assert gone.json()["status"] == "quarantined"
    assert gone.json()["reason"] == f"sender is not a contact of case {ref}"
    inbound_id = gone.json()["id"]

    no_reason = await inbound.http.post(
        f"/inbound/{inbound_id}/dismiss", json={"reason": ""}, headers=MANAGER
    )
    assert no_reason.status_code == 422
    dismissed = await inbound.http.post(
        f"/inbound/{inbound_id}/dismiss", json={"reason": "left the company"}, headers=ADMIN
    )
    assert dismissed.status_code == 200, dismissed.text
    view = dismissed.json()
    assert view["status"] == "dismissed"
    assert view["reason"] == (f"sender is not a contact of case {ref}; dismissed: left the company")
    again = await inbound.http.post(
        f"/inbound/{inbound_id}/dismiss", json={"reason": "again"}, headers=MANAGER
    )
    assert again.status_code == 409
    [message] = await eventually(
        lambda: inbound.events(ref, "client_message"), what="the contact's message"
    )
    assert message.detail["text"] == "Invoice query"


async def test_token_basic_auth_and_one_row_per_message_id(inbound: Inbound) -> None:
    """(d) A wrong token is the router's own 404; missing or wrong basic auth is a 401 asking
    for Basic; a repeat post of one Message-ID stores nothing new and answers 200."""
    wrong_token = await post_email(inbound.http, token="not-the-token", mid=message_id())
    assert wrong_token.status_code == 404
    no_route = await inbound.http.post("/inbound/email/x/y")
    assert wrong_token.json() == no_route.json() == {"detail": "Not Found"}
    # the wrong token wins even without credentials: nothing says the route exists
    assert (await post_email(inbound.http, token="nope", auth=None)).status_code == 404

    for auth in (None, (USER, "wrong-password"), ("someone", "t-inbound-password-9f2c")):
        r = await post_email(inbound.http, auth=auth, mid=message_id())
        assert r.status_code == 401, auth
        assert r.headers["www-authenticate"].startswith("Basic")
    garbled = await inbound.http.post(
        f"/inbound/email/{TOKEN}", headers={"Authorization": "Basic %%%not-base64"}
    )
    assert garbled.status_code == 401

    ref = await inbound.open_onboarding()
    mid = message_id()
    first = await post_email(inbound.http, subject=f"Re: {ref}", text="once", mid=mid)
    assert first.status_code == 200 and first.json()["status"] == "attached", first.text
    second = await post_email(inbound.http, subject=f"Re: {ref}", text="once", mid=mid)
    assert second.status_code == 200, second.text
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert len(await inbound.rows_for(mid)) == 1
    await eventually(lambda: inbound.events(ref, "client_message"), what="the first message")
    assert len(await inbound.events(ref, "client_message")) == 1


async def test_files_that_are_not_documents_are_refused_and_the_message_still_attached(
    inbound: Inbound,
) -> None:
    """(e) Attachments are judged by content: an .exe, a text file and a "PDF" that is text
    are refused with the reason; past the per-email limit they are refused unread; the PDF
    and the message itself are attached."""
    ref = await inbound.open_onboarding()
    mid = message_id()
    files = [
        ("setup.exe", EXE, "application/octet-stream"),
        ("notes.txt", b"just some notes\n", "text/plain"),
        ("passport.pdf", b"not really a pdf", "application/pdf"),
        ("statement.pdf", PDF, "application/pdf"),
    ]
    assert len(files) > MAX_ATTACHMENTS
    r = await post_email(
        inbound.http, subject=f"Re: {ref}", text="Files attached", mid=mid, attachments=files
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "attached"
    [row] = await inbound.rows_for(mid)
    outcomes = {a["filename"]: (a["outcome"], a.get("reason")) for a in row.attachments}
    not_a_document = "not a PDF, PNG or JPEG (judged by content, not by name)"
    assert outcomes == {
        "setup.exe": ("refused", not_a_document),
        "notes.txt": ("refused", not_a_document),
        "passport.pdf": ("refused", not_a_document),
        "statement.pdf": ("refused", f"over the limit of {MAX_ATTACHMENTS} attachments per email"),
    }
    assert await inbound.documents(ref) == []
    [message] = await eventually(
        lambda: inbound.events(ref, "client_message"), what="the message on the case"
    )
    assert message.detail["text"] == "Files attached"

    # within the limit, the real PDF among refused files becomes a document
    r = await post_email(
        inbound.http,
        subject=f"Re: {ref}",
        text="",
        mid=message_id(),
        attachments=[files[1], files[3]],
    )
    assert r.json()["status"] == "attached", r.text
    docs = await inbound.documents(ref)
    assert [(d.filename, d.status) for d in docs] == [("statement.pdf", "received")]
    messages = await eventually(
        lambda: inbound.events(ref, "client_message"),
        lambda events: len(events) == 2,
        what="the second message",
    )
    assert (
        messages[1].detail["text"] == "(an email with no text; attached: notes.txt, statement.pdf)"
    )


async def test_what_cannot_be_matched_or_read_is_kept_in_the_quarantine(inbound: Inbound) -> None:
    """No reference, an unknown case, malformed fields, a body that is not a form: each is
    stored quarantined with its reason, and SendGrid gets a 200."""
    no_ref = await post_email(inbound.http, subject="Hello there", mid=message_id())
    assert no_ref.status_code == 200
    assert (no_ref.json()["status"], no_ref.json()["reason"]) == (
        "quarantined",
        "no case reference found",
    )
    unknown = await post_email(inbound.http, subject="Re: case ZZZ-404NOTHERE", mid=message_id())
    assert unknown.json()["reason"] == "no case matches the references found: ZZZ-404NOTHERE"

    ref = await inbound.open_onboarding()
    malformed = await post_email(
        inbound.http, subject=f"Re: {ref}", envelope="{not json", mid=message_id()
    )
    assert malformed.status_code == 200
    assert malformed.json()["reason"] == "malformed fields: envelope is not valid JSON"
    assert malformed.json()["case_ref"] == ref

    not_a_form = await inbound.http.post(
        f"/inbound/email/{TOKEN}",
        content=b"garbage",
        headers={"Content-Type": "multipart/form-data"},  # no boundary
        auth=httpx.BasicAuth(USER, "t-inbound-password-9f2c"),
    )
    assert not_a_form.status_code == 200, not_a_form.text
    assert not_a_form.json()["status"] == "quarantined"
    assert not_a_form.json()["reason"].startswith("the post could not be read")
    row = await inbound.row(not_a_form.json()["id"])
    assert row.sender == "" and row.status == "quarantined"

    # an HTML-only reply from the client, quoted history in a blockquote
    html = await post_email(
        inbound.http,
        subject=f"Re: {ref}",
        text=None,
        html="<div>Yes, <b>that&#39;s</b> right.</div><blockquote>old &gt; stuff</blockquote>",
        mid=message_id(),
    )
    assert html.json()["status"] == "attached"
    assert (await inbound.row(html.json()["id"])).body_text == "Yes, that's right."


async def test_a_case_of_the_frozen_workflow_gets_the_message_on_its_timeline(
    inbound: Inbound,
) -> None:
    """A pre-engine case (onboarding-v1) has no client_message update: the message is an audit
    event on its timeline and the PDF a document, as an upload would be. A closed case takes
    no message: quarantined with the reason."""
    ref = await insert_case(inbound.sessions, prefix="OLD")
    mid = message_id()
    r = await post_email(
        inbound.http,
        subject=f"Re: case {ref}",
        text="Attached as asked",
        mid=mid,
        attachments=[("bill.pdf", PDF, "application/pdf")],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["case_ref"]) == ("attached", ref)
    [event] = await inbound.events(ref, "client_message")
    assert event.detail["text"] == "Attached as asked" and event.detail["channel"] == "email"
    assert [(d.filename, d.status) for d in await inbound.documents(ref)] == [
        ("bill.pdf", "received")
    ]

    async with inbound.sessions() as s:
        await s.execute(update(Case).where(Case.ref == ref).values(status="completed"))
        await s.commit()
    closed = await post_email(inbound.http, subject=f"Re: case {ref}", mid=message_id())
    assert closed.status_code == 200
    assert closed.json()["status"] == "quarantined"
    assert closed.json()["reason"] == (
        f"could not attach to case {ref}: case {ref} is completed; it takes no messages"
    )
