"""Who may open what: every route of the app, for every kind of caller.

The table below is the access policy, written out. Each route the app serves must be in it:
a new route fails this test until someone decides who may use it. For each route and caller
the test sends one request and checks only the access decision:

* denied means 401/403 (JSON API), a 303 to the console sign-in (console pages), or the portal's
  "link is not valid" 404 (portal pages, whose only credential is the token in the path);
* allowed means anything else (200, a 303 elsewhere, 400 for a form without its CSRF token,
  409/422 for a body the test leaves empty on purpose, so nothing is changed).

Requests use a case that exists, so a 404 never hides a decision. A portal token must never
open a console or API route, however it is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.services import work as work_service
from core.security import mint_portal_token
from core.settings import Role, Settings
from schemas.contracts import RebalanceReport
from store.db import SessionFactory
from tests.web.conftest import (
    ROLE_KEYS,
    ROLE_USERS,
    client_for,
    insert_case,
    route_table,
    sign_in,
)

ALL_ROLES = frozenset(Role)
STAFF = frozenset(
    {Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER, Role.RELATIONSHIP_MANAGER, Role.OPERATOR}
)
CM = Role.CASE_MANAGER
CR = Role.COMPLIANCE_REVIEWER
RM = Role.RELATIONSHIP_MANAGER
OP = Role.OPERATOR
CLIENT = Role.CLIENT_APP


@dataclass(frozen=True)
class Rule:
    """How a route is protected, and which roles pass (admin always passes)."""

    kind: str  # public | api | console | staff_page | portal
    roles: frozenset[Role] = field(default_factory=frozenset)


PUBLIC = Rule("public")
SIGNED = Rule("signed")
"""Provider webhooks: only a request signed by SendGrid or Twilio gets in (403 for anyone
else, whatever API key or session they bring)."""
PORTAL = Rule("portal")


def api(*roles: Role) -> Rule:
    """JSON API: an API key or a console session with one of ``roles``."""
    return Rule("api", frozenset(roles))


def console(*roles: Role) -> Rule:
    """Console page or form: a console session only (API keys do not open it)."""
    return Rule("console", frozenset(roles))


def staff_page(*roles: Role) -> Rule:
    """HTML page for staff that also takes an API key (the dashboard)."""
    return Rule("staff_page", frozenset(roles))


ANY_CALLER = (CLIENT, *STAFF)
CONSOLE_ROLES = tuple(STAFF)

EXPECTED: dict[tuple[str, str], Rule] = {
    # --- open on purpose: probes, API docs, static assets, the sign-in form itself
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    # Prometheus scrapes without credentials (counts and latencies only); METRICS_TOKEN,
    # unset here, would require a bearer token of its own (tests/observability)
    ("GET", "/metrics"): PUBLIC,
    # --- provider webhooks (SendGrid/Twilio signatures, not our credentials)
    ("POST", "/providers/sendgrid/events"): SIGNED,
    ("POST", "/providers/twilio/status"): SIGNED,
    ("POST", "/providers/twilio/sms"): SIGNED,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): PUBLIC,
    # --- JSON API: cases
    ("POST", "/cases"): api(CLIENT, CM),
    ("GET", "/cases"): api(*ANY_CALLER),
    ("GET", "/cases/{ref}"): api(*ANY_CALLER),
    ("GET", "/cases/{ref}/state"): api(*ANY_CALLER),
    ("GET", "/cases/{ref}/sla"): api(*ANY_CALLER),
    ("POST", "/cases/{ref}/documents-received"): api(CLIENT, CM),
    ("POST", "/cases/{ref}/compliance-decision"): api(CM, CR),
    ("POST", "/cases/{ref}/final-review"): api(CM),
    ("POST", "/cases/{ref}/pause"): api(CM),
    ("POST", "/cases/{ref}/resume"): api(CM),
    ("POST", "/cases/{ref}/tasks/{task_key}/complete"): api(CM, CR, RM),
    ("POST", "/cases/{ref}/send-back"): api(CM),
    ("POST", "/cases/{ref}/escalation/acknowledge"): api(CM, CR, RM),
    ("POST", "/cases/{ref}/cancel"): api(CM),
    ("POST", "/cases/{ref}/decision"): api(CM, CR),
    ("POST", "/cases/{ref}/documents/waive"): api(CM),
    ("POST", "/cases/{ref}/documents/{doc_id}/review"): api(CM),
    ("POST", "/cases/{ref}/elements/{key}/skip"): api(CM),
    ("POST", "/cases/{ref}/checklists/{element}/items/{item}/tick"): api(CM, CR, RM),
    ("POST", "/cases/{ref}/reopen"): api(CM),
    ("POST", "/cases/{ref}/proposal"): api(CLIENT, CM),
    ("POST", "/cases/{ref}/messages"): api(CLIENT),
    ("POST", "/cases/{ref}/feedback"): api(CLIENT),
    ("POST", "/cases/{ref}/assignment"): api(CM, CR, RM),
    # --- JSON API: work queues (lists for any staff; rebalancing decisions for case managers)
    ("GET", "/work/mine"): api(*STAFF),
    ("GET", "/work/people/{username}"): api(*STAFF),
    ("GET", "/work/queue"): api(*STAFF),
    ("GET", "/work/workload"): api(*STAFF),
    ("GET", "/work/rebalancing"): api(*STAFF),
    ("POST", "/work/rebalance"): api(CM),
    ("POST", "/work/rebalancing/moves/{move_id}/apply"): api(CM),
    ("POST", "/work/rebalancing/moves/{move_id}/dismiss"): api(CM),
    # --- inbound email: SendGrid's post is authenticated by its secret path token (a wrong
    # one is a 404 like no route at all) plus basic auth, not by an API key or a session, so
    # for every caller here it is open (the test's token is wrong: 404). The quarantine:
    # case managers decide, operators read.
    ("POST", "/inbound/email/{token}"): PUBLIC,
    ("GET", "/inbound/quarantine"): api(CM, OP),
    ("POST", "/inbound/{inbound_id}/attach"): api(CM),
    ("POST", "/inbound/{inbound_id}/dismiss"): api(CM),
    # --- codec server (the Temporal UI decodes payloads through it): staff only
    ("POST", "/codec/decode"): api(*STAFF),
    ("POST", "/codec/encode"): api(*STAFF),
    # --- JSON API: case types
    ("GET", "/case-types"): api(*ANY_CALLER),
    ("GET", "/case-types/{name}"): api(*ANY_CALLER),
    # --- JSON API: documents
    ("POST", "/cases/{ref}/documents"): api(CLIENT, CM),
    ("GET", "/cases/{ref}/documents"): api(*ANY_CALLER),
    ("GET", "/cases/{ref}/documents/{doc_id}/content"): api(CM, OP),
    # --- JSON API: notifications, inbox, callbacks, preferences
    ("GET", "/cases/{ref}/notifications"): api(CM, OP),
    ("GET", "/cases/{ref}/inbox"): api(CLIENT, CM),
    ("POST", "/cases/{ref}/inbox/{notification_id}/read"): api(CLIENT, CM),
    ("GET", "/cases/{ref}/callbacks"): api(CM, OP),
    ("POST", "/cases/{ref}/callbacks/{callback_id}/done"): api(CM),
    ("PUT", "/cases/{ref}/preferences"): api(CLIENT, CM),
    ("POST", "/cases/{ref}/contacts"): api(CLIENT, CM),
    ("GET", "/cases/{ref}/contacts"): api(*STAFF),
    ("DELETE", "/cases/{ref}/contacts/{contact_id}"): api(CLIENT, CM),
    # --- reports: the A/B template variant report (case managers and operators)
    ("GET", "/reports/variants"): api(CM, OP),
    ("GET", "/reports/variants.csv"): api(CM, OP),
    ("GET", "/console/reports/variants"): console(CM, OP),
    # --- what-if over case history (a draft case type replayed; nothing is changed)
    ("GET", "/console/whatif"): console(CM, OP),
    ("POST", "/console/whatif"): console(CM, OP),
    # --- dashboard
    ("GET", "/dashboard"): api(*STAFF),
    ("GET", "/console/dashboard"): staff_page(*STAFF),
    # --- console pages and forms
    ("GET", "/console"): console(*CONSOLE_ROLES),
    ("GET", "/console/tasks"): console(*CONSOLE_ROLES),
    ("GET", "/console/cases/{ref}"): console(*CONSOLE_ROLES),
    ("POST", "/console/cases/{ref}/pause"): console(CM),
    ("POST", "/console/cases/{ref}/resume"): console(CM),
    ("POST", "/console/cases/{ref}/documents-received"): console(CM),
    ("POST", "/console/cases/{ref}/documents/review"): console(CM),
    ("POST", "/console/cases/{ref}/decide"): console(CM, CR),
    ("POST", "/console/cases/{ref}/tasks/{task_key}/complete"): console(CM, CR, RM),
    ("POST", "/console/cases/{ref}/send-back"): console(CM),
    ("POST", "/console/cases/{ref}/escalation/acknowledge"): console(CM, CR, RM),
    ("POST", "/console/cases/{ref}/cancel"): console(CM),
    ("POST", "/console/cases/{ref}/checklists/{element}/items/{item}/tick"): console(CM, CR, RM),
    ("POST", "/console/cases/{ref}/elements/{element}/skip"): console(CM),
    ("POST", "/console/cases/{ref}/reopen"): console(CM),
    ("GET", "/console/work"): console(*CONSOLE_ROLES),
    ("GET", "/console/workload"): console(*CONSOLE_ROLES),
    ("POST", "/console/cases/{ref}/assignment"): console(CM, CR, RM),
    ("POST", "/console/workload/rebalance"): console(CM),
    ("POST", "/console/workload/moves/{move_id}/apply"): console(CM),
    ("POST", "/console/workload/moves/{move_id}/dismiss"): console(CM),
    ("GET", "/console/inbound"): console(CM, OP),
    ("POST", "/console/inbound/{inbound_id}/attach"): console(CM),
    ("POST", "/console/inbound/{inbound_id}/dismiss"): console(CM),
    # --- client portal: the token in the path is the only credential
    ("GET", "/portal/{token}"): PORTAL,
    ("POST", "/portal/{token}/documents"): PORTAL,
    ("POST", "/portal/{token}/preferences"): PORTAL,
    ("POST", "/portal/{token}/inbox/{notification_id}/read"): PORTAL,
    ("GET", "/portal/{token}/inbox"): PORTAL,
    ("GET", "/portal/{token}/inbox/{notification_id}"): PORTAL,
    ("POST", "/portal/{token}/inbox/{notification_id}/open"): PORTAL,
    ("POST", "/portal/{token}/inbox/read-all"): PORTAL,
    ("POST", "/portal/{token}/nps"): PORTAL,
    ("POST", "/portal/{token}/proposal"): PORTAL,
    ("POST", "/portal/{token}/messages"): PORTAL,
}


@dataclass(frozen=True)
class Identity:
    """One kind of caller: nobody, an API key of a role, a console user, a portal link."""

    name: str
    role: Role | None = None
    via: str = "none"  # none | key | session | portal


IDENTITIES = [
    Identity("anonymous"),
    *(Identity(f"key:{role.value}", role, "key") for role in Role),
    *(Identity(f"user:{ROLE_USERS[role]}", role, "session") for role in ROLE_USERS),
    Identity("portal-token", via="portal"),
]


def allowed(rule: Rule, who: Identity) -> bool:
    if rule.kind == "public":
        return True
    if rule.kind == "signed":
        return False
    if rule.kind == "portal":
        return who.via == "portal"
    if who.role is None or who.via == "portal":
        return False
    if rule.kind == "console" and who.via != "session":
        return False
    return who.role == Role.ADMIN or who.role in rule.roles


def denial_ok(rule: Rule, who: Identity, response: httpx.Response) -> bool:
    """The response is the denial this kind of route gives this caller."""
    code = response.status_code
    to_login = code == 303 and response.headers.get("location", "").startswith("/console/login")
    if rule.kind == "portal":
        return code == 404 and "This link is not valid" in response.text
    if rule.kind == "signed":
        return code == 403
    if rule.kind == "api":
        return code == (401 if who.role is None or who.via == "portal" else 403)
    if rule.kind == "console":
        return to_login if who.via != "session" else code == 403
    if rule.kind == "staff_page":
        return to_login if who.role is None or who.via == "portal" else code == 403
    return False


def allowance_ok(rule: Rule, response: httpx.Response) -> bool:
    code = response.status_code
    if code in (401, 403) or code >= 500:
        return False
    if code == 303 and response.headers.get("location", "").startswith("/console/login"):
        return rule.kind == "public"  # sign-out sends you to the sign-in page
    invalid_link = code == 404 and "This link is not valid" in response.text
    return not (rule.kind == "portal" and invalid_link)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def no_rebalancing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``POST /work/rebalance`` would start a real run over the shared test database (and wait
    a minute for a worker this app does not have): the matrix only asks who gets in."""

    async def run(**_: Any) -> RebalanceReport:
        return RebalanceReport(run_id=0)

    monkeypatch.setattr(work_service, "run_rebalancing", run)


@dataclass
class Callers:
    settings: Settings
    ref: str
    portal_token: str
    clients: dict[str, httpx.AsyncClient]


@pytest.fixture
async def callers(
    web_app: FastAPI, web_settings: Settings, sessions: SessionFactory
) -> AsyncIterator[Callers]:
    ref = await insert_case(sessions, prefix="ACL")
    token = mint_portal_token(
        ref,
        secret=web_settings.portal_secret.get_secret_value(),
        ttl=timedelta(days=1),
        now=datetime.now(UTC),
    )
    clients: dict[str, httpx.AsyncClient] = {}
    for who in IDENTITIES:
        client = client_for(web_app)
        if who.via == "key":
            assert who.role is not None
            client.headers["X-API-Key"] = ROLE_KEYS[who.role]
        elif who.via == "session":
            await sign_in(client, who.name.removeprefix("user:"))
        elif who.via == "portal":
            # every way a token could be presented: as an API key, a bearer token, a query
            # parameter and a cookie; none of them may open anything but the portal
            client.headers["X-API-Key"] = token
            client.params = httpx.QueryParams({"token": token, "t": token})
            client.cookies.set("portal_token", token)
        clients[who.name] = client
    yield Callers(settings=web_settings, ref=ref, portal_token=token, clients=clients)
    for client in clients.values():
        await client.aclose()


PATH_VALUES = {
    "doc_id": "doc_" + "0" * 26,
    "task_key": "some_task",
    "notification_id": "1",
    "callback_id": "1",
    "key": "some_element",
    "element": "some_checklist",
    "item": "some_item",
    "name": "order_approval",
    "username": "maria",
    "contact_id": str(2**62),  # no such contact: an allowed caller gets a 404, nothing removed
    "move_id": str(2**62),  # no such proposal: an allowed caller gets a 404, nothing decided
    "inbound_id": str(2**62),  # no such inbound message: nothing attached or dismissed
}


def concrete(path: str, who: Identity, env: Callers) -> str:
    values = {
        **PATH_VALUES,
        "ref": env.ref,
        "token": env.portal_token if who.via == "portal" else "not-a-portal-token",
    }
    if path == "/static":
        return "/static/console.css"
    try:
        return path.format(**values)
    except KeyError as e:
        raise AssertionError(f"add a test value for path parameter {e} of {path}") from e


async def send(
    client: httpx.AsyncClient, method: str, path: str, rule: Rule, who: Identity, env: Callers
) -> httpx.Response:
    """One request that cannot change anything: bodies are empty or incomplete."""
    url = concrete(path, who, env)
    if method == "GET":
        return await client.get(url)
    if rule.kind == "portal" and who.via == "portal":
        from api.web.portal_service import csrf_token

        form = {"csrf": csrf_token(env.settings, env.portal_token)}
        return await client.request(method, url, data=form)
    if rule.kind in ("portal", "console", "public"):
        return await client.request(method, url, data={})
    return await client.request(method, url, json={})


# ------------------------------------------------------------------ the test
def _app_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for path, methods, _ in route_table(app):
        for method in methods or {"GET"}:
            if method != "HEAD":
                found.add((method, path))
    return found


def test_every_route_is_classified(web_app: FastAPI) -> None:
    unclassified = sorted(_app_routes(web_app) - EXPECTED.keys())
    assert not unclassified, (
        "routes with no access rule; add them to EXPECTED in tests/web/test_access_matrix.py: "
        f"{unclassified}"
    )


async def test_access_matrix(web_app: FastAPI, callers: Callers) -> None:
    routes = sorted(_app_routes(web_app) & EXPECTED.keys())
    assert len(routes) >= 40, "the app lost most of its routes?"
    wrong: list[str] = []
    for method, path in routes:
        rule = EXPECTED[(method, path)]
        for who in IDENTITIES:
            response = await send(callers.clients[who.name], method, path, rule, who, callers)
            expect_allowed = allowed(rule, who)
            ok = allowance_ok(rule, response) if expect_allowed else denial_ok(rule, who, response)
            if not ok:
                wrong.append(
                    f"{method} {path} as {who.name}: expected "
                    f"{'allowed' if expect_allowed else 'denied'}, got {response.status_code} "
                    f"{response.headers.get('location', '')} {response.text[:120]!r}"
                )
    assert not wrong, "access matrix violations:\n" + "\n".join(wrong)


async def test_portal_token_never_opens_console_or_api(web_app: FastAPI, callers: Callers) -> None:
    """Belt and braces for the rule above, with the token as a bearer credential too."""
    token = callers.portal_token
    async with client_for(web_app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for method, path in sorted(_app_routes(web_app) & EXPECTED.keys()):
            rule = EXPECTED[(method, path)]
            if rule.kind in ("public", "portal", "signed"):
                continue
            who = Identity("portal-bearer", via="portal")
            response = await send(client, method, path, rule, who, callers)
            assert denial_ok(rule, who, response), (method, path, response.status_code)
