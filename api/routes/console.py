"""/console: the case manager console (server-rendered HTML for people, not part of the API).

Pages need a signed-in console user (session cookie); anyone else is sent to the sign-in page
with a 303, never a JSON 401. API keys do not open console pages. Every form posts a CSRF token
and every command is role-checked here, on the server, before it reaches the workflow.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import FormData
from temporalio.service import RPCError

from api.deps import (
    Caller,
    CaseTypesDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
    client_address,
    get_case_types,
    get_throttle,
    session_caller,
)
from api.services import work as work_service
from api.web import console_service as console
from core.settings import Role, Settings
from schemas.case import CASE_REF_PATTERN
from schemas.enums import ClientTier, ClientType, SlaState

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", include_in_schema=False)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["stage_title"] = console.stage_title
templates.env.filters["status_title"] = console.status_title
templates.env.filters["duration"] = console.duration
templates.env.filters["when"] = lambda dt: dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "—"
templates.env.filters["iso"] = lambda dt: dt.isoformat() if dt else ""
templates.env.globals["may"] = console.may

_REF = re.compile(CASE_REF_PATTERN)
_TASK_KEY = re.compile(r"^[a-z0-9_]{1,60}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
# No inline script or style anywhere in the console, so the policy can be strict.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
CONSOLE_ROLES = frozenset(Role) - {Role.CLIENT_APP}


def signed_in(request: Request, settings: SettingsDep) -> Caller:
    """The console user from the session cookie; otherwise a 303 to the sign-in page (which
    brings a GET back here afterwards)."""
    caller = session_caller(request, settings)
    if caller is None:
        back = None
        if request.method == "GET":
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=status.HTTP_303_SEE_OTHER,
            detail="sign in to the console first",
            headers={"Location": console.login_url(back)},
        )
    if caller.role not in CONSOLE_ROLES:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="not a console role")
    return caller


SignedIn = Annotated[Caller, Depends(signed_in)]


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    user: Caller | None,
    status_code: int = 200,
) -> HTMLResponse:
    """A console page with the layout's common context (user, CSRF token, flash messages)."""
    try:
        registry = get_case_types(request)
    except Exception:  # a broken case type folder must not take the console down
        log.exception("console: case types unavailable")
        registry = None
    base = {
        "user": user,
        "csrf_token": console.csrf_token(request),
        "flashes": console.pop_flashes(request),
        "stage_name": console.stage_namer(registry),
    }
    return templates.TemplateResponse(
        request,
        f"console/{name}",
        {**base, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def error_page(request: Request, user: Caller | None, code: int, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"code": code, "message": message, "nav": None},
        user=user,
        status_code=code,
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


# ------------------------------------------------------------------ sign-in
@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    """The sign-in form (already signed in: straight on to ``next``)."""
    if session_caller(request, settings) is not None:
        return see_other(console.safe_next(next))
    return render(
        request,
        "login.html",
        {"next": console.safe_next(next), "error": None, "username": ""},
        user=None,
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep, session: SessionDep) -> Response:
    """Check the form's CSRF token, then the password; one generic error for any failure."""
    form = await request.form()
    target = console.safe_next(str(form.get("next") or ""))
    username = str(form.get("username") or "").strip()[:120]
    password = str(form.get("password") or "")
    throttle = get_throttle(request)
    checks = throttle.login_checks(client_address(request), username)
    if (wait := await throttle.retry_after(checks)) is not None:
        # too many failures: refuse before looking at the password, even a right one
        log.warning("console sign-in throttled user=%r", username[:60])
        minutes = "a minute" if wait <= 60 else f"{math.ceil(wait / 60)} minutes"
        response = render(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": "Too many failed sign-ins. For your security, sign-in is paused: "
                f"please wait {minutes} and try again.",
            },
            user=None,
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if not console.csrf_ok(request, form.get("csrf_token")):
        return render(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": "The sign-in form expired. Please try again.",
            },
            user=None,
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    user = (
        await console.authenticate(settings, session, username, password)
        if username and password
        else None
    )
    if user is None or user.role not in CONSOLE_ROLES:
        log.warning("console sign-in refused user=%r", username[:60])
        await throttle.hit(checks)
        return render(
            request,
            "login.html",
            {"next": target, "username": username, "error": "Unknown username or password."},
            user=None,
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    console.sign_in(request, username)
    log.info("console sign-in user=%s role=%s", username, user.role.value)
    return see_other(target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out (CSRF-checked, so another site cannot sign people out)."""
    form = await request.form()
    if not console.csrf_ok(request, form.get("csrf_token")):
        return see_other(console.HOME)
    console.sign_out(request)
    console.flash(request, "You are signed out.")
    return see_other(console.LOGIN)


# ------------------------------------------------------------------ pages
@router.get("", response_class=HTMLResponse)
async def queue(
    request: Request, session: SessionDep, registry: CaseTypesDep, user: SignedIn
) -> Response:
    """The case queue from the read model: filter (any case type, any stage), sort, page."""
    query = console.parse_queue_query(request.query_params)
    page = await console.load_queue(session, query)
    return render(
        request,
        "queue.html",
        {
            "nav": "queue",
            "query": query,
            "page": page,
            "statuses": list(console.STATUS_TITLES),
            "stages": console.stage_options(registry, query.stages),
            "case_types": console.case_type_options(registry),
            "sla_states": list(SlaState),
            "client_types": list(ClientType),
            "tiers": list(ClientTier),
            "sorts": console.SORT_TITLES,
            "sla_titles": console.SLA_TITLES,
        },
        user=user,
    )


@router.get("/tasks", response_class=HTMLResponse)
async def my_tasks(request: Request, session: SessionDep, user: SignedIn) -> Response:
    """Open tasks for my role on open cases (plus callbacks for relationship managers)."""
    tasks, callbacks = await console.load_my_tasks(session, user.role)
    return render(
        request,
        "tasks.html",
        {"nav": "tasks", "tasks": tasks, "callbacks": callbacks},
        user=user,
    )


@router.get("/work", response_class=HTMLResponse)
async def my_work(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    registry: CaseTypesDep,
    user: SignedIn,
) -> Response:
    """My work: the cases and steps I hold, soonest due first; my team's queue to take from."""
    work = await console.load_my_work(
        session=session, settings=settings, registry=registry, caller=user
    )
    return render(
        request,
        "work.html",
        {"nav": "work", "work": work},
        user=user,
    )


@router.get("/workload", response_class=HTMLResponse)
async def team_workload(
    request: Request, session: SessionDep, settings: SettingsDep, user: SignedIn
) -> Response:
    """Per team: each person's open items, near-breach count and oldest item; rebalancing runs
    and the moves waiting for a decision."""
    page = await console.load_workload(session=session, settings=settings)
    return render(
        request,
        "workload.html",
        {"nav": "workload", "w": page},
        user=user,
    )


@router.get("/cases/{ref}", response_class=HTMLResponse)
async def case_page(
    ref: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    registry: CaseTypesDep,
    user: SignedIn,
) -> Response:
    """One case of any type: its pinned stages, SLA, the current stage's elements, the
    actions it takes now, tasks, timeline, documents, screening, messages."""
    if not _REF.match(ref):
        return error_page(request, user, 404, f"There is no case {ref[:64]}.")
    try:
        detail = await console.load_case(
            session=session,
            temporal=temporal,
            settings=settings,
            registry=registry,
            ref=ref,
            caller=user,
        )
    except HTTPException as e:
        if e.status_code == status.HTTP_404_NOT_FOUND:
            return error_page(request, user, 404, f"There is no case {ref}.")
        if e.status_code == status.HTTP_403_FORBIDDEN:
            return error_page(
                request,
                user,
                403,
                f"Case {ref} is in a stage your role ({user.role.value.replace('_', ' ')}) "
                f"may not open: {e.detail}.",
            )
        raise
    return render(
        request,
        "case.html",
        {"nav": "queue", "d": detail, "paused": detail.paused},
        user=user,
    )


# ------------------------------------------------------------------ commands
BACK_TO = {"work": "/console/work", "workload": "/console/workload"}
"""Pages a form may ask to come back to (``back`` field) instead of the case page."""


async def _command(
    request: Request,
    *,
    action: str,
    user: Caller,
    subject: str,
    back: str,
    run: Callable[[FormData], Awaitable[str]],
    refusal: str = "on a case",
) -> Response:
    """Role check, CSRF check, run the command, flash the outcome, post/redirect/get.

    Refusals (403/409/422 with the service's or the workflow's own words), a form that does not
    fit, a case that closed meanwhile and an unreachable Temporal all become a flash message,
    never an error page. ``back`` is where to go afterwards (a form's ``back`` field may name
    one of ``BACK_TO`` instead).
    """
    if not console.may(user.role, action):
        return error_page(
            request, user, 403, f"Your role ({user.role.value}) may not do this {refusal}."
        )
    form = await request.form()
    if not console.csrf_ok(request, form.get("csrf_token")):
        return error_page(
            request, user, 400, "The form expired. Go back, reload the page and try again."
        )
    actor = user.username or user.label
    chosen = form.get("back")
    target = BACK_TO.get(chosen, back) if isinstance(chosen, str) else back
    try:
        message = await run(form)
        console.flash(request, message, "success")
        log.info("console action=%s %s actor=%s", action, subject, actor)
    except console.ActionRefused as e:
        console.flash(request, str(e), "error")
    except HTTPException as e:
        console.flash(request, f"Not done: {e.detail}", "error")
    except ValidationError as e:
        problems = "; ".join(str(err.get("msg", "")) for err in e.errors()[:3])
        console.flash(request, f"Not done: {problems}", "error")
    except (RPCError, TimeoutError) as e:
        log.warning("console action=%s %s temporal_error=%s", action, subject, e)
        console.flash(
            request,
            "Not done: the workflow service is unavailable; nothing was changed. "
            "Try again shortly.",
            "error",
        )
    except Exception:
        log.exception("console action=%s %s failed", action, subject)
        console.flash(request, "Not done: an unexpected error occurred (it was logged).", "error")
    return see_other(target)


async def _act(
    request: Request,
    *,
    action: str,
    ref: str,
    user: Caller,
    session: SessionDep,
    temporal: TemporalDep,
    task_key: str | None = None,
    element: str | None = None,
    item: str | None = None,
    settings: Settings | None = None,
) -> Response:
    """A command on one case (see ``_command``); back to the case page afterwards."""
    if (
        not _REF.match(ref)
        or (task_key is not None and not _TASK_KEY.match(task_key))
        or any(k is not None and not _KEY.match(k) for k in (element, item))
    ):
        return error_page(request, user, 404, "There is no such case, task or step.")

    async def run(form: FormData) -> str:
        return await console.perform(
            action,
            session=session,
            temporal=temporal,
            ref=ref,
            caller=user,
            form=form,
            task_key=task_key,
            element=element,
            item=item,
            settings=settings,
        )

    return await _command(
        request,
        action=action,
        user=user,
        subject=f"case={ref}",
        back=f"/console/cases/{ref}",
        run=run,
    )


@router.post("/cases/{ref}/pause")
async def pause(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    return await _act(
        request, action="pause", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/resume")
async def resume(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    return await _act(
        request, action="resume", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/documents-received")
async def documents_received(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    return await _act(
        request, action="documents", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/documents/review")
async def review_document(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    """Accept or reject one document the machine sent to a person (a rejection needs a
    note: the client reads it)."""
    return await _act(
        request, action="review_document", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/decide")
async def decide(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    """Approve or reject the open approval (a rejection names a reason code and a note)."""
    return await _act(
        request, action="decide", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/tasks/{task_key}/complete")
async def complete_task(
    ref: str,
    task_key: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    user: SignedIn,
) -> Response:
    return await _act(
        request,
        action="task",
        ref=ref,
        user=user,
        session=session,
        temporal=temporal,
        task_key=task_key,
    )


@router.post("/cases/{ref}/send-back")
async def send_back(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    return await _act(
        request, action="send_back", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/escalation/acknowledge")
async def acknowledge_escalation(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    return await _act(
        request, action="acknowledge", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/cancel")
async def cancel(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    return await _act(
        request, action="cancel", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/checklists/{element}/items/{item}/tick")
async def tick(
    ref: str,
    element: str,
    item: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    user: SignedIn,
) -> Response:
    return await _act(
        request,
        action="tick",
        ref=ref,
        user=user,
        session=session,
        temporal=temporal,
        element=element,
        item=item,
    )


@router.post("/cases/{ref}/elements/{element}/skip")
async def skip(
    ref: str,
    element: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    user: SignedIn,
) -> Response:
    """Skip an optional element of the current stage (a reason is required; audited)."""
    return await _act(
        request,
        action="skip",
        ref=ref,
        user=user,
        session=session,
        temporal=temporal,
        element=element,
    )


@router.post("/cases/{ref}/reopen")
async def reopen(
    ref: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    """Reopen a resolved case at a chosen stage (default: the case type's reopen stage)."""
    return await _act(
        request, action="reopen", ref=ref, user=user, session=session, temporal=temporal
    )


@router.post("/cases/{ref}/assignment")
async def assignment(
    ref: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    user: SignedIn,
) -> Response:
    """Take, assign (case managers: to anyone eligible; others: within their team), reassign
    (with a reason) or release the case or one open step of its stage."""
    return await _act(
        request,
        action="assign",
        ref=ref,
        user=user,
        session=session,
        temporal=temporal,
        settings=settings,
    )


# ------------------------------------------------------------------ rebalancing
_MOVE_ID = re.compile(r"^[1-9][0-9]{0,18}$")
MAX_MOVE_ID = 2**62


@router.post("/workload/rebalance")
async def rebalance_now(
    request: Request, temporal: TemporalDep, settings: SettingsDep, user: SignedIn
) -> Response:
    """Run rebalancing now (the scheduled workflow, started by hand) and flash what it did."""

    async def run(form: FormData) -> str:
        report = await work_service.run_rebalancing(
            temporal=temporal, settings=settings, caller=user
        )
        return console.rebalance_summary(report)

    return await _command(
        request,
        action="rebalance",
        user=user,
        subject="rebalance=manual",
        back="/console/workload",
        run=run,
        refusal="on team workload",
    )


async def _decide_move(
    request: Request,
    move_id: str,
    *,
    apply: bool,
    session: SessionDep,
    temporal: TemporalDep,
    user: Caller,
) -> Response:
    if not _MOVE_ID.match(move_id) or int(move_id) > MAX_MOVE_ID:
        return error_page(request, user, 404, "There is no such proposal.")

    async def run(form: FormData) -> str:
        move = await work_service.decide_proposal(
            session=session, temporal=temporal, move_id=int(move_id), caller=user, apply=apply
        )
        if apply:
            return (
                f"Moved {move.title} ({move.case_ref}) from {move.from_person} to {move.to_person}."
            )
        return f"Dismissed: {move.title} ({move.case_ref}) stays with {move.from_person}."

    return await _command(
        request,
        action="rebalance",
        user=user,
        subject=f"move={move_id}",
        back="/console/workload",
        run=run,
        refusal="on team workload",
    )


@router.post("/workload/moves/{move_id}/apply")
async def apply_move(
    move_id: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    """Make a proposed move (refused if the work has moved since)."""
    return await _decide_move(
        request, move_id, apply=True, session=session, temporal=temporal, user=user
    )


@router.post("/workload/moves/{move_id}/dismiss")
async def dismiss_move(
    move_id: str, request: Request, session: SessionDep, temporal: TemporalDep, user: SignedIn
) -> Response:
    """Leave the work where it is."""
    return await _decide_move(
        request, move_id, apply=False, session=session, temporal=temporal, user=user
    )
