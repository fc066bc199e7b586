"""/portal/{token}: the client's self-service page for their one case (HTML, no API key).

The token in the path is the only credential. A bad, expired or tampered token, or one naming
a case that does not exist, gets the same friendly 404 page. Every form carries a CSRF token
bound to the portal token; a POST without it gets 403. Successful POSTs redirect back to the
page (post/redirect/get) with a fixed notice code; refusals re-render the page with a message.

The message centre (``/inbox``) lists the client's in-app messages and shows one in full; only
its POSTs (open, mark read, mark all read) change anything. Every page of a case shows the
unread count in its header.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from api.deps import (
    SessionDep,
    SettingsDep,
    TemporalDep,
    client_address,
    get_case_types,
    get_throttle,
)
from api.web import portal_service as svc
from core.settings import Settings
from playbooks.registry import CaseTypeRegistry

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
FORM_OVERHEAD_BYTES = 64 * 1024
SMALL_FORM_BYTES = 64 * 1024
"""Cap of every portal POST except the upload (whose cap is the upload limit + overhead)."""

PORTAL_CSS = (WEB_DIR / "static" / "portal.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(PORTAL_CSS.encode()).digest()).decode()
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}
"""No caching (the page is private), no Referer (the URL holds the token), no framing, and a
CSP that allows only our own inline stylesheet: no scripts at all."""


def _zone(context: Any) -> tzinfo:
    """The client's zone (``time_zone`` in the page's context, checked by the service);
    UTC when unset."""
    name = context.get("time_zone") if context is not None else None
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@pass_context
def _portal_date(context: Any, value: datetime | None) -> str:
    """A day on the client's calendar: ``3 March 2025``."""
    if value is None:
        return "to be confirmed"
    value = value.astimezone(_zone(context))
    return f"{value.day} {value:%B %Y}"


@pass_context
def _portal_datetime(context: Any, value: datetime) -> str:
    """When a message came, in the client's zone: ``3 March 2025, 10:30 CET``."""
    local = value.astimezone(_zone(context))
    return f"{local.day} {local:%B %Y, %H:%M} {local.tzname() or 'UTC'}"


templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
templates.env.filters["portal_date"] = _portal_date
templates.env.filters["portal_datetime"] = _portal_datetime


def _message_page(
    request: Request,
    status_code: int,
    heading: str,
    message: str,
    back_url: str | None = None,
    back_label: str = "Back to your case",
) -> Response:
    return templates.TemplateResponse(
        request,
        "portal/message.html",
        {
            "heading": heading,
            "message": message,
            "back_url": back_url,
            "back_label": back_label,
            "portal_css": Markup(PORTAL_CSS),  # noqa: S704 - our own file, hashed in the CSP
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def not_found_page(request: Request) -> Response:
    """The one answer for every link that does not grant a case: it never says why."""
    return _message_page(
        request,
        status.HTTP_404_NOT_FOUND,
        "This link is not valid",
        "The link may be incomplete or may have expired. Please use the latest link we sent "
        "you, or contact your onboarding team for a new one.",
    )


class _BodyTooLarge(Exception):
    pass


class PortalRoute(APIRoute):
    """Portal routes: a capped request body, and friendly HTML for the portal's refusals.

    FastAPI parses a form before the handler runs, so the body cap sits in front (as in the
    documents API). Errors raised by the token or CSRF checks become HTML pages here rather
    than JSON.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            token = str(request.path_params.get("token", ""))
            throttle = get_throttle(request)
            genuine = _back_url(request, token) is not None  # signature + expiry only
            checks = throttle.portal_checks(client_address(request), token if genuine else None)
            if (wait := await throttle.retry_after(checks)) is not None:
                log.info("portal request throttled")
                return _too_many(request, wait)
            await throttle.hit(checks)
            try:
                return await original(request)
            except svc.PortalLinkInvalid:
                return not_found_page(request)
            except svc.CsrfRejected:
                log.info("portal form refused: missing or wrong csrf token")
                return _message_page(
                    request,
                    status.HTTP_403_FORBIDDEN,
                    "Please try again",
                    "This form has expired or was not sent from your case page. Go back to "
                    "your case, reload the page and try again.",
                    back_url=_back_url(request, token),
                )
            except _BodyTooLarge:
                return _too_large(request, token)
            except RequestValidationError:
                return _message_page(
                    request,
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    "Please try again",
                    "We could not read that form. Go back to your case and try again.",
                    back_url=_back_url(request, token),
                )

        return handler

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "POST":
            await super().handle(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        is_upload = str(scope.get("path", "")).endswith("/documents")
        cap = settings.max_upload_bytes + FORM_OVERHEAD_BYTES if is_upload else SMALL_FORM_BYTES
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            token = str(scope.get("path_params", {}).get("token", ""))
            response = _too_large(Request(scope), token)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _BodyTooLarge
            return message

        await super().handle(scope, capped_receive, send)


def _too_many(request: Request, wait: int) -> Response:
    """429: the link was used too often; nothing was done."""
    response = _message_page(
        request,
        status.HTTP_429_TOO_MANY_REQUESTS,
        "Please slow down",
        "This link has been used too many times in a short while, so we paused it for a "
        f"moment. Nothing was changed. Please wait {wait} seconds and open it again.",
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _back_url(request: Request, token: str) -> str | None:
    """The case page, only for a token that reads as genuine (it never confirms a bad one)."""
    try:
        svc.grant_for(token, request.app.state.settings)
    except svc.PortalLinkInvalid:
        return None
    return f"/portal/{token}"


def _too_large(request: Request, token: str) -> Response:
    back = _back_url(request, token)
    if back is None:
        return not_found_page(request)
    return RedirectResponse(
        f"{back}?notice=too_large#documents",
        status_code=status.HTTP_303_SEE_OTHER,
        headers=SECURITY_HEADERS,
    )


router = APIRouter(prefix="/portal", include_in_schema=False, route_class=PortalRoute)


def _registry(request: Request) -> CaseTypeRegistry | None:
    """The case types (for wording and document checklists); the page works without them."""
    try:
        return get_case_types(request)
    except Exception:
        log.exception("portal: case types unavailable")
        return None


async def portal_case(token: str, session: SessionDep, settings: SettingsDep) -> svc.PortalCase:
    """The case the link grants; any failure is the same 404 page."""
    return await svc.resolve_portal_case(session=session, settings=settings, token=token)


PortalDep = Annotated[svc.PortalCase, Depends(portal_case)]
FormText = Annotated[str | None, Form()]


async def _page(
    request: Request,
    *,
    portal: svc.PortalCase,
    session: SessionDep,
    temporal: TemporalDep,
    settings: Settings,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    page = await svc.build_page(
        session=session,
        temporal=temporal,
        settings=settings,
        registry=_registry(request),
        ref=portal.ref,
    )
    return templates.TemplateResponse(
        request,
        "portal/case.html",
        {
            "page": page,
            "notice": notice,
            "error": error,
            "csrf": svc.csrf_token(settings, portal.token),
            "base_url": f"/portal/{portal.token}",
            "portal_css": Markup(PORTAL_CSS),  # noqa: S704 - our own file, hashed in the CSP
            "time_zone": page.time_zone,
            "header_unread": page.messages.unread,
            "current": "case",
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def _render(
    request: Request,
    template: str,
    *,
    portal: svc.PortalCase,
    settings: Settings,
    context: dict[str, Any],
    status_code: int = status.HTTP_200_OK,
) -> Response:
    """A portal page of the case other than the main one (the message centre, a message)."""
    return templates.TemplateResponse(
        request,
        template,
        {
            "csrf": svc.csrf_token(settings, portal.token),
            "base_url": f"/portal/{portal.token}",
            "portal_css": Markup(PORTAL_CSS),  # noqa: S704 - our own file, hashed in the CSP
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


async def _centre(
    request: Request,
    *,
    portal: svc.PortalCase,
    session: SessionDep,
    settings: Settings,
    before: str | None = None,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    centre = await svc.message_centre(session=session, ref=portal.ref, before=before)
    return _render(
        request,
        "portal/inbox.html",
        portal=portal,
        settings=settings,
        context={
            "centre": centre,
            "notice": notice,
            "error": error,
            "time_zone": centre.time_zone,
            "header_unread": centre.messages.unread,
            "current": "inbox",
        },
        status_code=status_code,
    )


async def _act(
    request: Request,
    action: Awaitable[str],
    *,
    portal: svc.PortalCase,
    session: SessionDep,
    temporal: TemporalDep,
    settings: Settings,
    anchor: str,
) -> Response:
    """Run a form's action: success redirects back to the page with a thank-you; a refusal
    (PortalProblem) shows the page again with the reason and its status code."""
    try:
        notice = await action
    except svc.PortalProblem as problem:
        return await _page(
            request,
            portal=portal,
            session=session,
            temporal=temporal,
            settings=settings,
            error=problem.message,
            status_code=problem.status_code,
        )
    return _done(portal, notice, anchor)


def _done(portal: svc.PortalCase, notice: str, anchor: str) -> Response:
    return RedirectResponse(
        f"/portal/{portal.token}?notice={notice}#{anchor}",
        status_code=status.HTTP_303_SEE_OTHER,
        headers=SECURITY_HEADERS,
    )


@router.get("/{token}")
async def portal_page(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    notice: str | None = None,
) -> Response:
    """Progress, what is needed, upload, messages, preferences and (after welcome) NPS."""
    return await _page(
        request,
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        notice=svc.notice_text(notice),
    )


@router.post("/{token}/documents")
async def portal_upload(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    csrf: FormText = None,
    kind: FormText = None,
    issued_on: FormText = None,
    expires_on: FormText = None,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    svc.check_csrf(settings, portal.token, csrf)
    return await _act(
        request,
        svc.upload(
            session=session,
            temporal=temporal,
            settings=settings,
            ref=portal.ref,
            file=file,
            kind=kind,
            issued_on=issued_on,
            expires_on=expires_on,
        ),
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        anchor="documents",
    )


@router.post("/{token}/preferences")
async def portal_preferences(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    csrf: FormText = None,
    channels: Annotated[list[str] | None, Form()] = None,
    language: FormText = None,
    callback_stages: Annotated[list[str] | None, Form()] = None,
) -> Response:
    svc.check_csrf(settings, portal.token, csrf)
    return await _act(
        request,
        svc.save_preferences(
            session=session,
            temporal=temporal,
            settings=settings,
            registry=_registry(request),
            ref=portal.ref,
            channels=channels or [],
            language=language,
            callback_stages=callback_stages or [],
        ),
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        anchor="preferences",
    )


@router.post("/{token}/inbox/{notification_id}/read")
async def portal_mark_read(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    notification_id: int,
    csrf: FormText = None,
) -> Response:
    svc.check_csrf(settings, portal.token, csrf)
    return await _act(
        request,
        svc.mark_read(session=session, ref=portal.ref, notification_id=notification_id),
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        anchor="messages",
    )


@router.get("/{token}/inbox")
async def portal_inbox(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    settings: SettingsDep,
    before: str | None = None,
    notice: str | None = None,
) -> Response:
    """The message centre: the client's messages, newest first, 50 a page (``before``: the
    id of the last message of the previous page). Reading the list changes nothing."""
    return await _centre(
        request,
        portal=portal,
        session=session,
        settings=settings,
        before=before,
        notice=svc.notice_text(notice),
    )


@router.post("/{token}/inbox/read-all")
async def portal_mark_all_read(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    settings: SettingsDep,
    csrf: FormText = None,
    upto: FormText = None,
) -> Response:
    """Mark every message read, up to the newest one the client's page showed."""
    svc.check_csrf(settings, portal.token, csrf)
    try:
        notice = await svc.mark_all_read(session=session, ref=portal.ref, upto=upto)
    except svc.PortalProblem as problem:
        return await _centre(
            request,
            portal=portal,
            session=session,
            settings=settings,
            error=problem.message,
            status_code=problem.status_code,
        )
    return RedirectResponse(
        f"/portal/{portal.token}/inbox?notice={notice}",
        status_code=status.HTTP_303_SEE_OTHER,
        headers=SECURITY_HEADERS,
    )


def _message_missing(
    request: Request, portal: svc.PortalCase, problem: svc.PortalProblem
) -> Response:
    return _message_page(
        request,
        problem.status_code,
        "Message not found",
        f"{problem.message} It may belong to another case, or the link may be incomplete.",
        back_url=f"/portal/{portal.token}/inbox",
        back_label="Back to your messages",
    )


@router.get("/{token}/inbox/{notification_id}")
async def portal_message_view(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    settings: SettingsDep,
    notification_id: int,
) -> Response:
    """One message in full. A GET never marks it read: the centre's button (a POST to
    ``open``) does, and an unread message shown here offers "Mark as read"."""
    try:
        view = await svc.message_page(
            session=session, ref=portal.ref, notification_id=notification_id
        )
    except svc.PortalProblem as problem:
        return _message_missing(request, portal, problem)
    return _render(
        request,
        "portal/inbox_message.html",
        portal=portal,
        settings=settings,
        context={
            "view": view,
            "time_zone": view.time_zone,
            "header_unread": view.unread,
            "current": "inbox",
        },
    )


@router.post("/{token}/inbox/{notification_id}/open")
async def portal_open_message(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    settings: SettingsDep,
    notification_id: int,
    csrf: FormText = None,
) -> Response:
    """Open a message from the centre: mark it read, then show it (post/redirect/get)."""
    svc.check_csrf(settings, portal.token, csrf)
    try:
        await svc.mark_read(session=session, ref=portal.ref, notification_id=notification_id)
    except svc.PortalProblem as problem:
        return _message_missing(request, portal, problem)
    return RedirectResponse(
        f"/portal/{portal.token}/inbox/{notification_id}",
        status_code=status.HTTP_303_SEE_OTHER,
        headers=SECURITY_HEADERS,
    )


@router.post("/{token}/nps")
async def portal_nps(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    csrf: FormText = None,
    score: FormText = None,
    comment: FormText = None,
) -> Response:
    svc.check_csrf(settings, portal.token, csrf)
    return await _act(
        request,
        svc.submit_nps(
            session=session,
            temporal=temporal,
            ref=portal.ref,
            score_raw=score,
            comment_raw=comment,
        ),
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        anchor="feedback",
    )


@router.post("/{token}/proposal")
async def portal_proposal(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    csrf: FormText = None,
    decision: FormText = None,
    reason: FormText = None,
) -> Response:
    """Accept or reject what we proposed (a rejection says why and sends the case back)."""
    svc.check_csrf(settings, portal.token, csrf)
    return await _act(
        request,
        svc.respond_to_proposal(
            session=session,
            temporal=temporal,
            ref=portal.ref,
            decision=decision,
            reason_raw=reason,
        ),
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        anchor="proposal",
    )


@router.post("/{token}/messages")
async def portal_message(
    request: Request,
    portal: PortalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    csrf: FormText = None,
    text: FormText = None,
) -> Response:
    """Write to the team on the case (on a resolved case this reopens it)."""
    svc.check_csrf(settings, portal.token, csrf)
    return await _act(
        request,
        svc.send_message(session=session, temporal=temporal, ref=portal.ref, text_raw=text),
        portal=portal,
        session=session,
        temporal=temporal,
        settings=settings,
        anchor="write",
    )
