"""The portal's message centre over HTTP: the unread badge on every page of the case, the list
(newest first, previews, the client's time zone, paging), reading a message (only a POST marks
it read), "Mark all as read", and another case's message staying out of reach."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from core.settings import Settings
from store.db import SessionFactory
from store.models import NotificationRow
from tests.portal.conftest import csrf_of, make_case, token_for

T0 = datetime(2025, 3, 3, 23, 30, tzinfo=UTC)
BADGE = re.compile(r'id="inbox-badge"[^>]*aria-label="([^"]+)"')
ITEM_IDS = re.compile(r'<li class="message[^"]*" data-id="(\d+)"')


async def add_message(
    sessions: SessionFactory,
    ref: str,
    *,
    subject: str,
    body: str = "Dear Ada Lovelace,\n\nYour case moved on.\n",
    at: datetime = T0,
    read: bool = False,
    channel: str = "in_app",
    audience: str = "client",
    body_html: str | None = None,
) -> int:
    """One notification row as the outbox stores it."""
    async with sessions() as s:
        row = NotificationRow(
            outbox_key=f"{ref}:{uuid.uuid4().hex}",
            case_ref=ref,
            milestone="case_update",
            channel=channel,
            audience=audience,
            recipient=None,
            subject=subject,
            body_text=body,
            body_html=body_html,
            status="sent",
            attempts=1,
            created_at=at,
            read_at=at + timedelta(minutes=5) if read else None,
        )
        s.add(row)
        await s.commit()
        return row.id


async def read_at(sessions: SessionFactory, notification_id: int) -> datetime | None:
    async with sessions() as s:
        return await s.scalar(
            select(NotificationRow.read_at).where(NotificationRow.id == notification_id)
        )


def badge(html: str) -> str:
    found = BADGE.search(html)
    assert found, "no unread badge in the header"
    return found.group(1)


async def test_the_header_shows_the_unread_count_on_every_page_of_the_case(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    first = await add_message(sessions, ref, subject="Welcome", at=T0)
    await add_message(sessions, ref, subject="Documents needed", at=T0 + timedelta(hours=1))
    await add_message(sessions, ref, subject="Old news", at=T0 - timedelta(days=1), read=True)
    # neither a staff notice nor another channel's copy is the client's in-app message
    await add_message(sessions, ref, subject="Staff only: SLA at risk", audience="staff")
    await add_message(sessions, ref, subject="The e-mail copy", channel="email")

    for path in ("", "/inbox", f"/inbox/{first}"):
        page = await api.get(f"/portal/{token}{path}")
        assert page.status_code == 200, (path, page.text)
        assert badge(page.text) == "2 unread messages", path
        assert f'href="/portal/{token}/inbox"' in page.text
        assert "Staff only" not in page.text and "The e-mail copy" not in page.text

    case_page = (await api.get(f"/portal/{token}")).text
    assert "Messages (2 unread)" in case_page
    assert "All messages (3)" in case_page
    centre = (await api.get(f"/portal/{token}/inbox")).text
    assert "2 unread" in centre and "3 messages in all" in centre

    await add_message(sessions, ref, subject="One more", at=T0 + timedelta(hours=2))
    assert badge((await api.get(f"/portal/{token}/inbox")).text) == "3 unread messages"


async def test_no_unread_messages_says_so(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    page = await api.get(f"/portal/{token}")
    assert badge(page.text) == "No unread messages"
    assert "unread)" not in page.text
    centre = await api.get(f"/portal/{token}/inbox")
    assert "No messages yet" in centre.text
    assert 'id="mark-all-read"' not in centre.text

    await add_message(sessions, ref, subject="Hello", read=True)
    centre = await api.get(f"/portal/{token}/inbox")
    assert badge(centre.text) == "No unread messages"
    assert 'id="mark-all-read"' not in centre.text


async def test_the_centre_lists_newest_first_with_previews_in_the_clients_time_zone(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions, time_zone="Asia/Tokyo")
    token = token_for(portal_settings, ref)
    older = await add_message(sessions, ref, subject="Older", at=T0, read=True)
    newer = await add_message(
        sessions,
        ref,
        subject="Newer",
        body="Dear Ada Lovelace,\n\nWe need your proof of address.\n\n" + "More words. " * 40,
        at=T0 + timedelta(hours=1),
    )
    centre = (await api.get(f"/portal/{token}/inbox")).text
    assert ITEM_IDS.findall(centre) == [str(newer), str(older)]
    # 2025-03-04 00:30 UTC is 09:30 in Tokyo; 2025-03-03 23:30 UTC is 08:30 the next day
    assert "4 March 2025, 09:30 JST" in centre
    assert "4 March 2025, 08:30 JST" in centre
    assert f'<li class="message unread" data-id="{newer}" data-read="no">' in centre
    assert f'<li class="message" data-id="{older}" data-read="yes">' in centre
    # the preview skips the greeting and is short
    preview = re.search(rf'id="msg-{newer}-preview">([^<]*)<', centre)
    assert preview is not None
    assert preview.group(1).startswith("We need your proof of address.")
    assert preview.group(1).endswith("…") and len(preview.group(1)) <= 140
    assert "Dear Ada" not in preview.group(1)


async def test_a_get_never_marks_a_message_read(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    mid = await add_message(
        sessions, ref, subject="Your documents", body="Dear Ada,\n\nPlease send a utility bill."
    )
    for path in ("", "/inbox", f"/inbox/{mid}", f"/inbox/{mid}?read=1"):
        response = await api.get(f"/portal/{token}{path}")
        assert response.status_code == 200, path
    view = await api.get(f"/portal/{token}/inbox/{mid}")
    assert "Please send a utility bill." in view.text
    assert 'id="mark-read"' in view.text  # an unread message offers the POST to mark it
    assert await read_at(sessions, mid) is None
    assert badge(view.text) == "1 unread message"


async def test_opening_a_message_marks_it_read_and_shows_it(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    mid = await add_message(
        sessions,
        ref,
        subject="Your account is ready",
        body="Dear Ada Lovelace,\n\nYour account number is 12345678.\n\nKind regards",
    )
    await add_message(sessions, ref, subject="Another one", at=T0 + timedelta(hours=1))
    csrf = await csrf_of(api, token)

    opened = await api.post(f"/portal/{token}/inbox/{mid}/open", data={"csrf": csrf})
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/portal/{token}/inbox/{mid}"
    assert opened.headers["cache-control"] == "no-store"
    first_read = await read_at(sessions, mid)
    assert first_read is not None

    view = await api.get(opened.headers["location"])
    assert view.status_code == 200
    assert "Your account is ready" in view.text
    assert "Your account number is 12345678." in view.text
    assert 'id="mark-read"' not in view.text
    assert badge(view.text) == "1 unread message"
    centre = (await api.get(f"/portal/{token}/inbox")).text
    assert f'data-id="{mid}" data-read="yes"' in centre

    # opening it again keeps the first read time
    again = await api.post(f"/portal/{token}/inbox/{mid}/open", data={"csrf": csrf})
    assert again.status_code == 303
    assert await read_at(sessions, mid) == first_read


async def test_mark_all_as_read_stops_at_the_newest_message_the_page_showed(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    seen = [
        await add_message(sessions, ref, subject=f"Seen {i}", at=T0 + timedelta(minutes=i))
        for i in range(3)
    ]
    centre = (await api.get(f"/portal/{token}/inbox")).text
    upto = re.search(r'name="upto" value="(\d+)"', centre)
    assert upto is not None and upto.group(1) == str(seen[-1])
    csrf = await csrf_of(api, token)
    late = await add_message(sessions, ref, subject="Arrived meanwhile", at=T0 + timedelta(hours=1))

    done = await api.post(
        f"/portal/{token}/inbox/read-all", data={"csrf": csrf, "upto": upto.group(1)}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/portal/{token}/inbox?notice=all_read"
    for mid in seen:
        assert await read_at(sessions, mid) is not None
    assert await read_at(sessions, late) is None
    after = await api.get(done.headers["location"])
    assert "All your messages are marked as read." in after.text
    assert badge(after.text) == "1 unread message"

    # without ``upto`` (an old form) every message is marked
    done = await api.post(f"/portal/{token}/inbox/read-all", data={"csrf": csrf})
    assert done.status_code == 303
    assert await read_at(sessions, late) is not None
    bad = await api.post(f"/portal/{token}/inbox/read-all", data={"csrf": csrf, "upto": "x1"})
    assert bad.status_code == 422


async def test_another_cases_message_is_not_found_and_stays_unread(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    mine = await make_case(sessions)
    theirs = await make_case(sessions, name="Bob Other")
    token = token_for(portal_settings, mine)
    my_msg = await add_message(sessions, mine, subject="Mine", at=T0 - timedelta(days=1))
    their_msg = await add_message(
        sessions, theirs, subject="Bob's secret offer", body="Dear Bob,\n\nConfidential."
    )
    staff_msg = await add_message(sessions, mine, subject="Staff notice", audience="staff")
    csrf = await csrf_of(api, token)

    for mid in (their_msg, staff_msg, 2**63 - 1, 10**30):
        view = await api.get(f"/portal/{token}/inbox/{mid}")
        assert view.status_code == 404, mid
        assert "That message was not found." in view.text
        assert "This link is not valid" not in view.text  # the link itself is fine
        assert "Bob" not in view.text and "Confidential" not in view.text
        for action in ("open", "read"):
            response = await api.post(f"/portal/{token}/inbox/{mid}/{action}", data={"csrf": csrf})
            assert response.status_code == 404, (mid, action)
            assert "That message was not found." in response.text
    # mark all on my case, with their (newer) id as the limit, touches only my messages
    done = await api.post(
        f"/portal/{token}/inbox/read-all", data={"csrf": csrf, "upto": str(their_msg)}
    )
    assert done.status_code == 303
    assert await read_at(sessions, my_msg) is not None
    assert await read_at(sessions, their_msg) is None
    assert await read_at(sessions, staff_msg) is None
    # their id as a paging cursor shows my newest page, nothing of theirs
    paged = await api.get(f"/portal/{token}/inbox", params={"before": str(their_msg)})
    assert paged.status_code == 200
    assert "Bob" not in paged.text and "Mine" in paged.text


async def test_the_centres_forms_need_the_links_csrf_token(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    other = await make_case(sessions)
    token = token_for(portal_settings, ref)
    mid = await add_message(sessions, ref, subject="Hello")
    others_csrf = await csrf_of(api, token_for(portal_settings, other))
    for path in (f"inbox/{mid}/open", "inbox/read-all"):
        for data in ({}, {"csrf": "0" * 64}, {"csrf": others_csrf}):
            response = await api.post(f"/portal/{token}/{path}", data=data)
            assert response.status_code == 403, (path, data)
    assert await read_at(sessions, mid) is None


async def test_the_centre_pages_fifty_at_a_time(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    ids = [
        await add_message(sessions, ref, subject=f"Message {i:02d}", at=T0 + timedelta(minutes=i))
        for i in range(55)
    ]
    newest_first = [str(i) for i in reversed(ids)]
    first = (await api.get(f"/portal/{token}/inbox")).text
    assert ITEM_IDS.findall(first) == newest_first[:50]
    older = re.search(r'id="older-messages"', first)
    assert older is not None and 'id="newest-messages"' not in first
    assert f'href="/portal/{token}/inbox?before={newest_first[49]}"' in first
    assert "55 messages in all" in first and badge(first) == "55 unread messages"

    second = (await api.get(f"/portal/{token}/inbox", params={"before": newest_first[49]})).text
    assert ITEM_IDS.findall(second) == newest_first[50:]
    assert 'id="older-messages"' not in second and 'id="newest-messages"' in second
    # a cursor that is not a number is the newest page, not an error
    odd = await api.get(f"/portal/{token}/inbox", params={"before": "abc"})
    assert odd.status_code == 200 and ITEM_IDS.findall(odd.text) == newest_first[:50]
    # the case page shows only the newest few, and links to the rest
    case_page = (await api.get(f"/portal/{token}")).text
    assert ITEM_IDS.findall(case_page) == newest_first[:5]
    assert "All messages (55)" in case_page


async def test_message_text_is_escaped_and_the_email_html_is_not_shown(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
):
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    mid = await add_message(
        sessions,
        ref,
        subject='<img src=x onerror="alert(1)">Hi',
        body="Dear Ada,\n\n<script>alert('x')</script> & <b>bold</b>",
        body_html="<p>HTML-ONLY-MARKER</p>",
    )
    for path in ("", "/inbox", f"/inbox/{mid}"):
        page = (await api.get(f"/portal/{token}{path}")).text
        assert "<script" not in page and "<img" not in page and "<b>" not in page
        assert "&lt;img src=x" in page
        assert "HTML-ONLY-MARKER" not in page
    view = (await api.get(f"/portal/{token}/inbox/{mid}")).text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in view
