"""/cases/{ref}/documents: upload a client document, list them, download one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Response, UploadFile, status
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from api.deps import (
    AnyRole,
    Caller,
    DocumentSubmitter,
    SessionDep,
    SettingsDep,
    TemporalDep,
    require,
)
from api.responses import errors
from api.services import documents as svc
from core.settings import Role, Settings
from integrations.blobstore import BlobStore
from schemas.case import CASE_REF_PATTERN
from schemas.documents import DOCUMENT_ID_PATTERN, DocumentKind
from schemas.text import Actor

# Multipart framing and the small text fields around the file; the file itself is capped
# exactly (max_upload_bytes) by the service.
FORM_OVERHEAD_BYTES = 64 * 1024
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class _BodyTooLarge(HTTPException):
    """Raised from inside body reading; an HTTPException so FastAPI passes it through as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"upload is larger than the {limit} byte limit",
        )


class UploadLimitRoute(APIRoute):
    """Stops reading a request body once it passes the upload limit (from the app's settings).

    FastAPI parses a multipart form before any handler or dependency runs, and Starlette spools
    a file part of any size to disk. So the cap sits here, in front: a declared Content-Length
    over it is refused unread, and a chunked body is cut off the moment it crosses it.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings: Settings = scope["app"].state.settings
        limit = settings.max_upload_bytes
        cap = limit + FORM_OVERHEAD_BYTES
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            too_large = _BodyTooLarge(limit)
            response = JSONResponse(
                status_code=too_large.status_code,
                content={"detail": too_large.detail},
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge(limit)
            return message

        await super().handle(scope, capped_receive, send)


router = APIRouter(prefix="/cases", tags=["documents"], route_class=UploadLimitRoute)

Ref = Annotated[str, Path(pattern=CASE_REF_PATTERN, description="Case reference")]
DocId = Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN, description="Document id")]
DocumentReader = Annotated[Caller, Depends(require(Role.CASE_MANAGER, Role.OPERATOR))]


def blob_store(settings: SettingsDep) -> BlobStore:
    """The blob store for this app's settings (override this dependency to swap backends)."""
    return svc.get_blob_store(settings)


BlobStoreDep = Annotated[BlobStore, Depends(blob_store)]


@router.post(
    "/{ref}/documents",
    response_model=svc.DocumentUploaded,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The same file was already uploaded to this case: that document"},
        **errors(
            400,
            401,
            403,
            404,
            409,
            413,
            415,
            422,
            503,
            described={
                404: "No such case",
                409: "The case is closed",
                413: "The file is larger than the upload limit",
                415: "Not a PDF, PNG or JPEG (judged by content)",
                422: "Invalid kind or dates",
            },
        ),
    },
)
async def upload_document(
    ref: Ref,
    response: Response,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    blobs: BlobStoreDep,
    caller: DocumentSubmitter,
    file: Annotated[UploadFile, File(description="PDF, PNG or JPEG")],
    kind: Annotated[DocumentKind, Form()],
    issued_on: Annotated[
        str | None, Form(max_length=10, pattern=DAY_PATTERN, description="YYYY-MM-DD")
    ] = None,
    expires_on: Annotated[
        str | None, Form(max_length=10, pattern=DAY_PATTERN, description="YYYY-MM-DD")
    ] = None,
    uploaded_by: Annotated[
        Actor | None, Form(description="One clean line; defaults to the caller")
    ] = None,
) -> svc.DocumentUploaded:
    """Upload one document. Idempotent on content: the same bytes return the same document."""
    result = await svc.upload_document(
        session=session,
        temporal=temporal,
        blobs=blobs,
        settings=settings,
        ref=ref,
        upload=file,
        kind=kind,
        issued_on=issued_on,
        expires_on=expires_on,
        uploaded_by=(uploaded_by or "").strip() or caller.label,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/cases/{ref}/documents/{result.id}/content"
    return result


@router.get(
    "/{ref}/documents", response_model=svc.DocumentList, responses=errors(401, 404, 422, 503)
)
async def list_documents(ref: Ref, session: SessionDep, _: AnyRole) -> svc.DocumentList:
    """The case's documents, newest first, with their verification status."""
    return await svc.list_documents(session=session, ref=ref)


@router.get(
    "/{ref}/documents/{doc_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}},
        **errors(
            401, 403, 404, 422, 503, described={404: "No such case, or no such document of it"}
        ),
    },
)
async def document_content(
    ref: Ref, doc_id: DocId, session: SessionDep, blobs: BlobStoreDep, _: DocumentReader
) -> Response:
    """The document's bytes, as an attachment with its sniffed content type."""
    content = await svc.document_content(session=session, blobs=blobs, ref=ref, doc_id=doc_id)
    return Response(
        content=content.data,
        media_type=content.content_type,
        headers={
            "Content-Disposition": svc.content_disposition(content.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
