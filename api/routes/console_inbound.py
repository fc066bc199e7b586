"""Console: the quarantine of inbound messages (review, attach to a case, dismiss).

Case managers (and admins) decide; operators may look. The forms follow the console's rules
(``api.routes.console``): a signed-in user, a role check on the server, a CSRF token, then a
flash message and a redirect back to the list. The decisions are the JSON API's own
(``api.services.inbound_email``), so the two cannot drift apart.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData
from temporalio.service import RPCError

from api.deps import Caller, SessionDep, SettingsDep, TemporalDep
from api.routes.console import SignedIn, error_page, render, see_other
from api.routes.documents import BlobStoreDep
from api.services import inbound_email as svc
from api.web import console_service as console
from core.settings import Role
from schemas.case import CASE_REF_PATTERN

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE = "/console/inbound"
PAGE_SIZE = 25
READERS = frozenset({Role.CASE_MANAGER, Role.OPERATOR, Role.ADMIN})
DECIDERS = frozenset({Role.CASE_MANAGER, Role.ADMIN})
_ID = re.compile(r"^[1-9][0-9]{0,18}$")
MAX_ID = 2**62
_REF = re.compile(CASE_REF_PATTERN)
REASON_MAX_CHARS = 2000


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) <= 6 else 1


@router.get("/inbound", response_class=HTMLResponse)
async def quarantine_page(request: Request, session: SessionDep, user: SignedIn) -> Response:
    """Quarantined inbound messages, newest first: who wrote, about what, when, why held."""
    if user.role not in READERS:
        return error_page(
            request, user, 403, f"Your role ({user.role.value}) may not see the inbound quarantine."
        )
    number = _page_number(request.query_params.get("page"))
    page = await svc.quarantine(session, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    pages = max(1, math.ceil(page.total / PAGE_SIZE))
    return render(
        request,
        "inbound.html",
        {
            "nav": "inbound",
            "page": page,
            "number": number,
            "pages": pages,
            "can_decide": user.role in DECIDERS,
        },
        user=user,
    )


async def _decide(
    request: Request,
    *,
    user: Caller,
    inbound_id: str,
    run: Callable[[int, FormData], Awaitable[str]],
) -> Response:
    """Role check, CSRF check, run, flash the outcome, back to the list (the console's
    ``_command``, with the quarantine's roles). Refusals are flashed, never an error page."""
    if user.role not in DECIDERS:
        return error_page(
            request, user, 403, f"Your role ({user.role.value}) may not do this in the quarantine."
        )
    if not _ID.match(inbound_id) or int(inbound_id) > MAX_ID:
        return error_page(request, user, 404, "There is no such inbound message.")
    form = await request.form()
    if not console.csrf_ok(request, form.get("csrf_token")):
        return error_page(
            request, user, 400, "The form expired. Go back, reload the page and try again."
        )
    try:
        message = await run(int(inbound_id), form)
        console.flash(request, message, "success")
        log.info("console inbound id=%s actor=%s", inbound_id, user.label)
    except console.ActionRefused as e:
        console.flash(request, str(e), "error")
    except HTTPException as e:
        console.flash(request, f"Not done: {e.detail}", "error")
    except ValidationError as e:
        problems = "; ".join(str(err.get("msg", "")) for err in e.errors()[:3])
        console.flash(request, f"Not done: {problems}", "error")
    except (RPCError, TimeoutError) as e:
        log.warning("console inbound id=%s temporal_error=%s", inbound_id, e)
        console.flash(
            request,
            "Not done: the workflow service is unavailable; nothing was changed. "
            "Try again shortly.",
            "error",
        )
    except Exception:
        log.exception("console inbound id=%s failed", inbound_id)
        console.flash(request, "Not done: an unexpected error occurred (it was logged).", "error")
    return see_other(PAGE)


def _field(form: FormData, name: str, what: str) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise console.ActionRefused(f"Please give {what}.")
    return text


@router.post("/inbound/{inbound_id}/attach")
async def attach(
    inbound_id: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    blobs: BlobStoreDep,
    user: SignedIn,
) -> Response:
    """Attach the message to the case named in the form (its attachments become documents)."""

    async def run(message_id: int, form: FormData) -> str:
        ref = _field(form, "case_ref", "the case reference")
        if not _REF.match(ref):
            raise console.ActionRefused(f"{ref[:70]} is not a case reference.")
        done = await svc.attach(
            session=session,
            temporal=temporal,
            blobs=blobs,
            settings=settings,
            message_id=message_id,
            case_ref=ref,
            decided_by=user.label,
        )
        documents = sum(1 for a in done.attachments if a.outcome == svc.DOCUMENT)
        filed = f"; {documents} attachment(s) filed as documents" if documents else ""
        return f"Attached the message from {done.sender or 'an unknown sender'} to {ref}{filed}."

    return await _decide(request, user=user, inbound_id=inbound_id, run=run)


@router.post("/inbound/{inbound_id}/dismiss")
async def dismiss(
    inbound_id: str, request: Request, session: SessionDep, blobs: BlobStoreDep, user: SignedIn
) -> Response:
    """Dismiss the message with a reason (it is kept for the record)."""

    async def run(message_id: int, form: FormData) -> str:
        reason = _field(form, "reason", "a reason")
        if len(reason) > REASON_MAX_CHARS:
            raise console.ActionRefused(
                f"The reason is too long ({REASON_MAX_CHARS} characters at most)."
            )
        done = await svc.dismiss(
            session=session,
            blobs=blobs,
            message_id=message_id,
            reason=reason,
            decided_by=user.label,
        )
        return f"Dismissed the message from {done.sender or 'an unknown sender'}."

    return await _decide(request, user=user, inbound_id=inbound_id, run=run)
