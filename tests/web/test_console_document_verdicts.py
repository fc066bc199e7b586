"""The console shows each document's verdict beside the file: the badge and, for staff, what
was read and compared (a person decides a needs_review document from here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.services.documents import new_document_id
from store.db import SessionFactory
from store.models import DocumentRow
from tests.web.conftest import insert_case


async def test_the_verdict_and_its_reasons_sit_beside_the_file(
    console_as: Any, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, prefix="DV", stage="document_collection")
    reasons = [
        {
            "code": "name_mismatch",
            "verdict": "needs_review",
            "staff": "name on the document 'GRACE HOPPER' vs application 'Ada Lovelace': score 0",
            "client": "the name on the document does not match the application",
        },
        {
            "code": "typed_expiry_differs",
            "verdict": "machine_verified",
            "staff": "the uploader typed expiry 2031-01-01; the MRZ says 2030-01-01",
            "client": "",
        },
    ]
    async with sessions() as s:
        for kind, verdict, found in (
            ("government_id", "needs_review", reasons),
            ("proof_of_address", None, []),
        ):
            s.add(
                DocumentRow(
                    id=new_document_id(),
                    case_ref=ref,
                    kind=kind,
                    filename=f"{kind}.pdf",
                    content_type="application/pdf",
                    size=2048,
                    sha256=new_document_id().ljust(64, "0")[:64],
                    storage_key="unused",
                    uploaded_by="client",
                    uploaded_at=datetime.now(UTC),
                    status=verdict or "received",
                    verdict=verdict,
                    verdict_reasons=found,
                )
            )
        await s.commit()
    page = (await (await console_as("maria")).client.get(f"/console/cases/{ref}")).text
    assert 'data-verdict="needs_review"' in page and "needs review</span>" in page
    assert "name on the document &#39;GRACE HOPPER&#39;" in page  # escaped, for staff
    assert "the uploader typed expiry 2031-01-01" in page
    assert 'data-verdict="unread"' in page and "not read yet" in page
