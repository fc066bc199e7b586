"""Uploading a client's checklist documents over HTTP, as the client app does.

The documents are read and judged now (not taken at their typed dates), so these are real,
readable documents generated for the case's own client: a passport in the client's name
(its MRZ checks out) and a recent utility bill addressed to them.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import httpx

from bench import document_data as dd
from tests.e2e.conftest import CLIENT_APP, OPERATOR


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


def holder(name: str, date_of_birth: str | None = None) -> dd.Person:
    """A passport holder with the application's name (first word given, rest surname) and
    date of birth (any, when the application gives none: nothing to compare it with)."""
    given, _, surname = name.strip().partition(" ")
    return dataclasses.replace(
        dd.ADA,
        given=given,
        surname=surname or given,
        birth=date.fromisoformat(date_of_birth) if date_of_birth else dd.ADA.birth,
    )


async def upload_individual_checklist(
    http: httpx.AsyncClient,
    ref: str,
    *,
    name: str | None = None,
    date_of_birth: str | None = None,
) -> None:
    """A valid passport and a recent utility bill, both PDFs in the client's name (read from
    the case when not given). PDFs with a text layer read in milliseconds, so a loaded machine
    does not push the reading past its timeout (OCR of images is tested in tests/documents)."""
    if name is None:
        case = await http.get(f"/cases/{ref}", headers=OPERATOR)
        assert case.status_code == 200, case.text
        name = str(case.json()["client"]["name"])
    today = date.today()
    person = holder(name, date_of_birth)
    passport = await upload(
        http,
        ref,
        "government_id",
        dd.passport_pdf(person, today + timedelta(days=3000)),
        "passport.pdf",
        issued_on=str(today - timedelta(days=400)),
        expires_on=str(today + timedelta(days=3000)),
    )
    assert passport.status_code == 201, passport.text
    bill = await upload(
        http,
        ref,
        "proof_of_address",
        dd.proof_of_address_pdf(name, today - timedelta(days=10), seed=11),
        "bill.pdf",
        issued_on=str(today - timedelta(days=10)),
    )
    assert bill.status_code == 201, bill.text
