"""Uploading a client's checklist documents over HTTP, as the client app does."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.documents.samples import JPEG, pdf
from tests.e2e.conftest import CLIENT_APP


async def upload(
    http: httpx.AsyncClient,
    ref: str,
    kind: str,
    content: bytes,
    filename: str,
    **dates: str,
) -> httpx.Response:
    return await http.post(
        f"/cases/{ref}/documents",
        files={"file": (filename, content)},
        data={"kind": kind, **dates},
        headers=CLIENT_APP,
    )


async def upload_individual_checklist(http: httpx.AsyncClient, ref: str) -> None:
    """A valid passport (JPEG) and a recent utility bill (PDF)."""
    today = date.today()
    passport = await upload(
        http,
        ref,
        "government_id",
        JPEG,
        "passport.jpg",
        issued_on=str(today - timedelta(days=400)),
        expires_on=str(today + timedelta(days=3000)),
    )
    assert passport.status_code == 201, passport.text
    bill = await upload(
        http,
        ref,
        "proof_of_address",
        pdf("Utility bill"),
        "bill.pdf",
        issued_on=str(today - timedelta(days=10)),
    )
    assert bill.status_code == 201, bill.text
