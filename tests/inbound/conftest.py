"""Fixtures for inbound email: the in-process API with a real worker on the Temporal dev server
and real Postgres (as ``tests.api_engine``), and posts built exactly as SendGrid's Inbound
Parse sends them (multipart/form-data, default mode)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from temporalio.client import Client

from core.settings import Settings
from store.db import SessionFactory
from store.models import CaseContact, CaseEvent, DocumentRow, InboundMessage
from tests.api_engine.conftest import MANAGER, build_app, engine_settings
from tests.api_engine.test_engine_over_http import wait_state
from tests.conftest import new_ref, running_worker
from tests.factories import profile_json

TOKEN = "t-inbound-token-4b1d"
USER = "sendgrid-parse"
PASSWORD = "t-inbound-password-9f2c"
AUTH = (USER, PASSWORD)
INBOUND_DOMAIN = "inbound.example.com"
CLIENT_EMAIL = "ada@example.com"  # tests.factories.profile's
MAX_ATTACHMENTS = 3

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"


@dataclass
class Inbound:
    app: FastAPI
    http: httpx.AsyncClient
    sessions: SessionFactory
    temporal: Client
    settings: Settings
    workflow_ids: list[str] = field(default_factory=list)

    def client(self) -> httpx.AsyncClient:
        """Another in-process client (its own cookies: one browser session)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")

    async def open_case(self, case_type: str = "client_onboarding", **data: Any) -> str:
        ref = new_ref("MAIL")
        body: dict[str, Any] = {"reference": ref, "case_type": case_type, "client": profile_json()}
        if data:
            body["data"] = data
        r = await self.http.post("/cases", json=body, headers=MANAGER)
        assert r.status_code == 201, r.text
        self.workflow_ids.append(r.json()["workflow_id"])
        return ref

    async def open_onboarding(self) -> str:
        """A client onboarding case waiting for the client's documents."""
        ref = await self.open_case()
        await wait_state(self.http, ref, lambda s: s["stage"] == "document_collection")
        return ref

    async def open_resolved_order(self) -> str:
        """An order small enough to need no approval: it resolves by itself."""
        ref = await self.open_case(
            "order_approval", order_id=f"SO-{uuid.uuid4().hex[:8]}", order_value=100
        )
        await wait_state(self.http, ref, lambda s: s["status"] == "resolved")
        return ref

    async def add_contact(self, ref: str, email: str, *, removed: bool = False) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as s:
            s.add(
                CaseContact(
                    case_ref=ref,
                    name="Contact",
                    email=email,
                    role="finance",
                    milestones=[],
                    created_at=now,
                    created_by="test",
                    removed_at=now if removed else None,
                )
            )
            await s.commit()

    async def row(self, inbound_id: int) -> InboundMessage:
        async with self.sessions() as s:
            row = await s.get(InboundMessage, inbound_id)
            assert row is not None
            return row

    async def rows_for(self, provider_id: str) -> list[InboundMessage]:
        async with self.sessions() as s:
            return list(
                await s.scalars(
                    select(InboundMessage).where(InboundMessage.provider_id == provider_id)
                )
            )

    async def events(self, ref: str, kind: str) -> list[CaseEvent]:
        async with self.sessions() as s:
            return list(
                await s.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.case_ref == ref, CaseEvent.kind == kind)
                    .order_by(CaseEvent.id)
                )
            )

    async def documents(self, ref: str) -> list[DocumentRow]:
        async with self.sessions() as s:
            return list(
                await s.scalars(
                    select(DocumentRow).where(DocumentRow.case_ref == ref).order_by(DocumentRow.id)
                )
            )


def message_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.net>"


def sendgrid_form(
    *,
    sender: str = f"Ada Lovelace <{CLIENT_EMAIL}>",
    to: str = f"Client Onboarding <cases@{INBOUND_DOMAIN}>",
    subject: str = "Re: your case",
    text: str | None = "Thanks, see attached.",
    html: str | None = None,
    mid: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    **overrides: str,
) -> list[tuple[str, tuple[str | None, Any] | tuple[str | None, Any, str]]]:
    """The multipart parts SendGrid's Inbound Parse posts (default mode, not raw): the text
    fields, then ``attachment1..N`` files. ``overrides`` replace (or add) text fields."""
    envelope_to = to.rpartition("<")[2].rstrip(">") if "<" in to else to
    envelope_from = sender.rpartition("<")[2].rstrip(">") if "<" in sender else sender
    headers = (
        "Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Wed, 27 Jul 2016 "
        "20:53:06 +0000 (UTC)\n"
        f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
        + (f"Message-ID: {mid}\n" if mid else "")
        + "Date: Wed, 27 Jul 2016 13:53:02 -0700\nMIME-Version: 1.0\n"
    )
    fields: dict[str, str] = {
        "headers": headers,
        "dkim": "{@example.com : pass}",
        "to": to,
        "from": sender,
        "subject": subject,
        "sender_ip": "209.85.223.172",
        "spam_report": "Spam detection software has NOT identified this incoming email as spam.",
        "envelope": json.dumps({"to": [envelope_to], "from": envelope_from}),
        "attachments": str(len(attachments)),
        "spam_score": "0.011",
        "charsets": json.dumps(
            {"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": "UTF-8"}
        ),
        "SPF": "pass",
    }
    if text is not None:
        fields["text"] = text
    if html is not None:
        fields["html"] = html
    if attachments:
        fields["attachment-info"] = json.dumps(
            {
                f"attachment{i}": {"filename": name, "name": name, "type": content_type}
                for i, (name, _, content_type) in enumerate(attachments, start=1)
            }
        )
    fields.update(overrides)
    parts: list[tuple[str, tuple[str | None, Any] | tuple[str | None, Any, str]]] = [
        (name, (None, value)) for name, value in fields.items()
    ]
    for i, (name, data, content_type) in enumerate(attachments, start=1):
        parts.append((f"attachment{i}", (name, data, content_type)))
    return parts


async def post_email(
    http: httpx.AsyncClient,
    *,
    token: str = TOKEN,
    auth: tuple[str, str] | None = AUTH,
    **form: Any,
) -> httpx.Response:
    """POST one email as SendGrid does (basic auth from the URL's user:password)."""
    return await http.post(
        f"/inbound/email/{token}",
        files=sendgrid_form(**form),
        auth=httpx.BasicAuth(*auth) if auth else httpx.USE_CLIENT_DEFAULT,
    )


@pytest.fixture(scope="module")
async def inbound(
    tmp_path_factory: pytest.TempPathFactory, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[Inbound]:
    root = tmp_path_factory.mktemp("inbound")
    base = engine_settings(
        root,
        inbound_email_token=TOKEN,
        inbound_email_user=USER,
        inbound_email_password=PASSWORD,
        inbound_max_attachments=MAX_ATTACHMENTS,
    )
    temporal: Client = dev_server_env.client
    async with running_worker(temporal, sessions, base) as worker:
        settings = base.model_copy(update={"temporal_task_queue": worker.task_queue})
        app = build_app(settings, sessions, temporal)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            env = Inbound(
                app=app, http=http, sessions=sessions, temporal=temporal, settings=settings
            )
            try:
                yield env
            finally:
                for workflow_id in env.workflow_ids:  # no timers may outlive the worker
                    with contextlib.suppress(Exception):
                        await temporal.get_workflow_handle(workflow_id).terminate("test cleanup")
