"""Uploading, listing and downloading documents over HTTP (in-process app, real Postgres,
real Temporal dev server, real files on disk)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.worker import Worker

from core.settings import Settings
from schemas.case import workflow_id_for
from store.db import SessionFactory
from store.models import DocumentRow
from tests.documents import samples
from tests.documents.conftest import CLIENT, MANAGER, OPERATOR, UPLOAD_LIMIT, make_case
from tests.documents.stub_workflow import DocumentsSignalRecorder

DOC_ID_LENGTH = len("doc_") + 26


def blob_files(settings: Settings) -> list[Path]:
    root = settings.blob_dir
    assert root is not None
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def row_count(sessions: SessionFactory, ref: str) -> int:
    async with sessions() as s:
        return (
            await s.scalar(
                select(func.count()).select_from(DocumentRow).where(DocumentRow.case_ref == ref)
            )
            or 0
        )


async def upload(
    api: httpx.AsyncClient,
    ref: str,
    data: bytes,
    *,
    filename: str = "id.pdf",
    declared: str = "application/pdf",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    form = {"kind": "government_id", **fields}
    return await api.post(
        f"/cases/{ref}/documents",
        files={"file": (filename, data, declared)},
        data=form,
        headers=CLIENT if headers is None else headers,
    )


async def assert_nothing_stored(sessions: SessionFactory, settings: Settings, ref: str) -> None:
    assert await row_count(sessions, ref) == 0
    assert blob_files(settings) == []


# ------------------------------------------------------------------------------ happy path
async def test_upload_then_duplicate_returns_the_same_document(api, sessions, doc_settings):
    ref = await make_case(sessions)
    pdf = samples.pdf("passport")
    first = await upload(
        api, ref, pdf, issued_on="2025-01-10", expires_on="2035-01-09", uploaded_by="ann"
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"].startswith("doc_") and len(body["id"]) == DOC_ID_LENGTH
    assert body["case_ref"] == ref
    assert body["kind"] == "government_id"
    assert body["filename"] == "id.pdf"
    assert body["content_type"] == "application/pdf"
    assert body["size"] == len(pdf)
    assert body["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert (body["issued_on"], body["expires_on"]) == ("2025-01-10", "2035-01-09")
    assert body["uploaded_by"] == "ann"
    assert body["uploaded_at"] and body["status"] == "received"
    assert body["created"] is True
    assert first.headers["location"] == f"/cases/{ref}/documents/{body['id']}/content"

    again = await upload(api, ref, pdf, filename="other-name.pdf", headers=MANAGER)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == body["id"] and again.json()["created"] is False
    assert await row_count(sessions, ref) == 1
    assert [p.name for p in blob_files(doc_settings)] == [body["sha256"]]


async def test_concurrent_identical_uploads_make_one_document(api, sessions, doc_settings):
    ref = await make_case(sessions)
    pdf = samples.pdf("race")
    responses = await asyncio.gather(*(upload(api, ref, pdf) for _ in range(4)))
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await row_count(sessions, ref) == 1
    assert len(blob_files(doc_settings)) == 1


async def test_uploaded_by_defaults_to_the_caller(api, sessions):
    ref = await make_case(sessions)
    response = await upload(api, ref, samples.png(), filename="a.png", declared="image/png")
    assert response.status_code == 201, response.text
    assert response.json()["uploaded_by"].startswith("client_app:")
    assert response.json()["content_type"] == "image/png"


async def test_same_bytes_on_another_case_is_a_separate_document(api, sessions, doc_settings):
    pdf = samples.pdf("shared")
    one, two = await make_case(sessions), await make_case(sessions)
    first = await upload(api, one, pdf)
    second = await upload(api, two, pdf)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert len(blob_files(doc_settings)) == 2


async def test_list_is_newest_first_and_content_downloads(api, sessions):
    ref = await make_case(sessions)
    older = await upload(api, ref, samples.pdf("older"), filename="older.pdf")
    newer = await upload(
        api,
        ref,
        samples.JPEG,
        filename="selfie.jpg",
        declared="image/jpeg",
        kind="proof_of_address",
    )
    assert older.status_code == newer.status_code == 201

    for headers in (CLIENT, MANAGER, OPERATOR):
        listing = await api.get(f"/cases/{ref}/documents", headers=headers)
        assert listing.status_code == 200
        items = listing.json()["items"]
        assert [d["id"] for d in items] == [newer.json()["id"], older.json()["id"]]
        assert {"status", "status_detail"} <= set(items[0])

    doc_id = newer.json()["id"]
    for headers in (MANAGER, OPERATOR):
        content = await api.get(f"/cases/{ref}/documents/{doc_id}/content", headers=headers)
        assert content.status_code == 200
        assert content.content == samples.JPEG
        assert content.headers["content-type"] == "image/jpeg"
        assert content.headers["content-disposition"] == 'attachment; filename="selfie.jpg"'
        assert content.headers["x-content-type-options"] == "nosniff"


# ------------------------------------------------------------------------------ refusals
async def test_over_the_limit_is_413_and_stores_nothing(api, sessions, doc_settings):
    ref = await make_case(sessions)
    just_over = samples.pdf() + b"%" * (UPLOAD_LIMIT + 1 - len(samples.pdf()))
    response = await upload(api, ref, just_over)
    assert response.status_code == 413, response.text
    assert str(UPLOAD_LIMIT) in response.json()["detail"]
    await assert_nothing_stored(sessions, doc_settings, ref)

    # a PDF of exactly the limit is fine (padding goes before the trailer, as in real files)
    exactly = b"%PDF-1.4\n" + b" " * (UPLOAD_LIMIT - 9 - 6) + b"%%EOF\n"
    assert len(exactly) == UPLOAD_LIMIT
    assert (await upload(api, ref, exactly)).status_code == 201


async def test_a_huge_declared_body_is_refused_unread(api, sessions, doc_settings):
    ref = await make_case(sessions)
    response = await upload(api, ref, b"%PDF-" + b"x" * (UPLOAD_LIMIT * 4))
    assert response.status_code == 413
    await assert_nothing_stored(sessions, doc_settings, ref)


async def test_a_chunked_body_is_cut_off_at_the_limit(api, sessions, doc_settings):
    """No Content-Length: the route stops reading once the body passes the cap."""
    ref = await make_case(sessions)
    boundary = uuid.uuid4().hex
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n'
            f"government_id\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="file"; filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n'
        ).encode()
        for _ in range(200):  # up to 12.5 MiB if nobody stops us
            sent.append(1)
            yield b"x" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await api.post(
        f"/cases/{ref}/documents",
        content=body(),
        headers={**CLIENT, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert len(sent) < 10, "the server kept reading past the limit"
    await assert_nothing_stored(sessions, doc_settings, ref)


@pytest.mark.parametrize(
    ("filename", "data", "declared"),
    [
        ("x.pdf", samples.HTML, "application/pdf"),
        ("x.pdf", samples.zip_archive(), "application/pdf"),
        ("setup.pdf", samples.EXE, "application/pdf"),
        ("empty.pdf", b"", "application/pdf"),
    ],
)
async def test_disguised_files_are_415(api, sessions, doc_settings, filename, data, declared):
    ref = await make_case(sessions)
    response = await upload(api, ref, data, filename=filename, declared=declared)
    assert response.status_code == 415, response.text
    detail = response.json()["detail"]
    assert "PDF, PNG or JPEG" in detail
    assert "script" not in detail and "MZ" not in detail
    await assert_nothing_stored(sessions, doc_settings, ref)


async def test_hostile_filename_never_reaches_the_disk(api, sessions, doc_settings, tmp_path):
    ref = await make_case(sessions)
    pdf = samples.pdf("traversal")
    response = await upload(api, ref, pdf, filename="../../etc/passwd.pdf")
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "passwd.pdf"
    digest = hashlib.sha256(pdf).hexdigest()
    async with sessions() as s:
        row = await s.scalar(select(DocumentRow).where(DocumentRow.case_ref == ref))
    assert row is not None and row.storage_key == f"cases/{ref}/{digest}"
    assert doc_settings.blob_dir is not None
    assert blob_files(doc_settings) == [doc_settings.blob_dir / "cases" / ref / digest]
    assert not (tmp_path / "etc").exists()
    content = await api.get(f"/cases/{ref}/documents/{row.id}/content", headers=MANAGER)
    assert content.headers["content-disposition"] == 'attachment; filename="passwd.pdf"'


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "tax_return"},
        {"issued_on": "10/01/2025"},
        {"issued_on": "2025-02-30"},
        {"expires_on": "2025-01-01T00:00:00"},
        {"issued_on": "2025-06-01", "expires_on": "2025-05-31"},
        {"uploaded_by": "x" * 121},
    ],
)
async def test_bad_kind_or_dates_are_422(api, sessions, doc_settings, fields):
    ref = await make_case(sessions)
    response = await upload(api, ref, samples.pdf(), **fields)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    await assert_nothing_stored(sessions, doc_settings, ref)


async def test_unknown_case_is_404_everywhere(api, sessions, doc_settings):
    assert (await upload(api, "NO-SUCH-CASE", samples.pdf())).status_code == 404
    assert (await api.get("/cases/NO-SUCH-CASE/documents", headers=CLIENT)).status_code == 404
    missing = "/cases/NO-SUCH-CASE/documents/doc_" + "0" * 26 + "/content"
    assert (await api.get(missing, headers=MANAGER)).status_code == 404
    assert blob_files(doc_settings) == []


async def test_another_cases_document_is_404(api, sessions):
    mine, theirs = await make_case(sessions), await make_case(sessions)
    doc = (await upload(api, theirs, samples.pdf("theirs"))).json()
    response = await api.get(f"/cases/{mine}/documents/{doc['id']}/content", headers=MANAGER)
    assert response.status_code == 404


@pytest.mark.parametrize("status", ["cancelled", "rejected", "completed", "closed"])
async def test_closed_case_is_409(api, sessions, doc_settings, status):
    ref = await make_case(sessions, status=status)
    response = await upload(api, ref, samples.pdf())
    assert response.status_code == 409
    assert status in response.json()["detail"]
    await assert_nothing_stored(sessions, doc_settings, ref)
    assert (await api.get(f"/cases/{ref}/documents", headers=CLIENT)).status_code == 200


async def test_a_resolved_engine_case_takes_documents(api, sessions, doc_settings):
    """An engine case's status is not a ``CaseStatus``: ``resolved`` was a 500 (ValueError)
    here, found by the fuzz run. A resolved case may still be reopened, so it is not closed."""
    ref = await make_case(sessions, status="resolved")
    response = await upload(api, ref, samples.pdf("resolved"))
    assert response.status_code == 201, response.text
    assert await row_count(sessions, ref) == 1


async def test_auth_401_and_403(api, sessions, doc_settings):
    ref = await make_case(sessions)
    assert (await upload(api, ref, samples.pdf(), headers={})).status_code == 401
    bad_key = {"X-API-Key": "nope"}
    assert (await upload(api, ref, samples.pdf(), headers=bad_key)).status_code == 401
    assert (await upload(api, ref, samples.pdf(), headers=OPERATOR)).status_code == 403
    await assert_nothing_stored(sessions, doc_settings, ref)
    assert (await api.get(f"/cases/{ref}/documents")).status_code == 401

    doc = (await upload(api, ref, samples.pdf())).json()
    content = f"/cases/{ref}/documents/{doc['id']}/content"
    assert (await api.get(content, headers=CLIENT)).status_code == 403
    assert (await api.get(content)).status_code == 401


# ------------------------------------------------------------------------------ the workflow
@pytest.mark.parametrize("status", ["draft", "open"])
async def test_upload_is_kept_when_no_workflow_hears_it(api, sessions, doc_settings, status):
    ref = await make_case(sessions, status=status)  # no workflow was ever started
    response = await upload(api, ref, samples.pdf(f"kept-{status}"))
    assert response.status_code == 201, response.text
    assert response.json()["workflow_notified"] is False
    assert await row_count(sessions, ref) == 1
    assert len(blob_files(doc_settings)) == 1


async def test_running_workflow_gets_documents_received(api, sessions, dev_server_env):
    ref = await make_case(sessions)
    client = dev_server_env.client
    queue = f"tq-docs-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[DocumentsSignalRecorder]):
        handle = await client.start_workflow(
            DocumentsSignalRecorder.run, id=workflow_id_for(ref), task_queue=queue
        )
        response = await upload(api, ref, samples.pdf("notified"), uploaded_by="ann@bank")
        assert response.status_code == 201, response.text
        assert response.json()["workflow_notified"] is True
        received = await handle.query(DocumentsSignalRecorder.received)
        assert [(r.actor, r.document_ids) for r in received] == [
            ("ann@bank", [response.json()["id"]])
        ]
        await handle.signal(DocumentsSignalRecorder.finish)
        await handle.result()
