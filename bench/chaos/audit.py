"""Convergence and the audit: what a chaos run lost, left stuck or did twice.

Sources, each checked against the others:
- the driver: which Idempotency-Keys the API accepted (201/200) and under which references;
- Postgres (the read model): cases, accounts, stage visits, the notification outbox and the
  webhook delivery log;
- Temporal: every workflow execution (visibility) and each case's own ``state`` query;
- the stand-ins: what SendGrid and Twilio accepted and what the webhook receiver processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .harness import DONE_STATUSES, Driver, Stack, Timeline, now

SETTLED_MESSAGE = frozenset({"sent", "fallback", "rejected", "unconfirmed", "local_outbox"})
SETTLED_WEBHOOK = frozenset({"delivered", "dead_letter"})
EXPECTED_WEBHOOKS = ("account.provisioned", "case.resolved")  # every completed case sends these
EXAMPLES = 5  # examples kept per finding, for the report
RECHECK_SECONDS = 60  # a read-model difference must outlast this to count (closing races)
_LINK = re.compile(r"https?://\S+")


def sms_text(body: str) -> str:
    """An SMS body with its links masked: every render mints a fresh portal link, so two
    sends of one message differ only there."""
    return _LINK.sub("<link>", body)


@dataclass
class Figures:
    """One scenario's result. ``failures`` are the acceptance counts that must all be 0."""

    key: str
    title: str
    cases: int
    accepted: int = 0
    not_accepted: int = 0
    completed: int = 0
    lost: int = 0
    stuck: int = 0
    duplicate_cases: int = 0
    duplicate_accounts: int = 0
    duplicate_emails: int = 0
    duplicate_sms: int = 0
    cross_channel_duplicates: int = 0
    duplicate_webhooks: int = 0
    read_model_mismatches: int = 0
    api_other_5xx: int = 0
    api_503: int = 0
    api_503_without_retry_after: int = 0
    api_no_answer: int = 0
    api_requests: int = 0
    crashes: int = 0
    emails_accepted: int = 0
    sms_accepted: int = 0
    webhooks_processed: int = 0
    webhooks_redelivered: int = 0  # same webhook-id again: acknowledged, not processed twice
    webhooks_dead_letter: int = 0
    webhooks_missing: int = 0
    messages_unconfirmed: int = 0
    messages_rejected: int = 0
    messages_fallback: int = 0
    messages_unsettled: int = 0
    sms_unrecorded: int = 0  # an SMS the provider has that matches no outbox row
    sent_not_accepted: int = 0  # outbox says sent, the provider has no such message
    accepted_not_sent: int = 0  # the provider has it, the outbox says otherwise
    read_model_behind_cases: int = 0  # the driver acted on a stage the case had left
    read_model_behind_max_seconds: float = 0.0
    # from the final sign-off's 200 until GET /cases showed the case resolved (the workflow
    # resolves at once: only the welcome message is queued in between)
    resolve_lag_p50: float = 0.0
    resolve_lag_p95: float = 0.0
    resolve_lag_max: float = 0.0
    api_refusals: dict[str, int] = field(default_factory=dict)  # the commonest 4xx
    injected: dict[str, dict[str, int]] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    drive_seconds: float = 0.0
    converge_seconds: float = 0.0
    total_seconds: float = 0.0
    converged: bool = False

    FAILURES = (
        "lost",
        "stuck",
        "duplicate_cases",
        "duplicate_accounts",
        "duplicate_emails",
        "duplicate_sms",
        "cross_channel_duplicates",
        "duplicate_webhooks",
        "read_model_mismatches",
        "api_other_5xx",
        "api_503_without_retry_after",
    )

    @property
    def passed(self) -> bool:
        return all(getattr(self, name) == 0 for name in self.FAILURES) and self.not_accepted == 0

    def example(self, kind: str, text: str) -> None:
        items = self.examples.setdefault(kind, [])
        if len(items) < EXAMPLES:
            items.append(text)


# ------------------------------------------------------------------------------ the data
@dataclass
class Snapshot:
    cases: dict[str, Any]  # ref -> row
    accounts: dict[str, list[str]]  # ref -> account numbers
    visits: dict[str, list[tuple[int, str, str | None, bool]]]  # (seq, stage, outcome, exited)
    notifications: list[Any]
    webhooks: list[Any]


async def read_model(engine: AsyncEngine) -> Snapshot:
    from store.models import Account, Case, NotificationRow, StageIntervalRow, WebhookDeliveryRow

    async with engine.connect() as conn:
        cases = {r.ref: r for r in (await conn.execute(select(Case.__table__))).all()}
        accounts: dict[str, list[str]] = defaultdict(list)
        for r in (await conn.execute(select(Account.case_ref, Account.account_number))).all():
            accounts[r.case_ref].append(r.account_number)
        visits: dict[str, list[tuple[int, str, str | None, bool]]] = defaultdict(list)
        rows = await conn.execute(
            select(
                StageIntervalRow.case_ref,
                StageIntervalRow.seq,
                StageIntervalRow.stage,
                StageIntervalRow.outcome,
                StageIntervalRow.exited_at,
            ).order_by(StageIntervalRow.case_ref, StageIntervalRow.seq)
        )
        for v in rows.all():
            visits[v.case_ref].append((v.seq, v.stage, v.outcome, v.exited_at is not None))
        notifications = list((await conn.execute(select(NotificationRow.__table__))).all())
        webhooks = list((await conn.execute(select(WebhookDeliveryRow.__table__))).all())
    return Snapshot(dict(cases), dict(accounts), dict(visits), notifications, webhooks)


async def unsettled(engine: AsyncEngine) -> tuple[int, int, int]:
    """(cases not resolved, messages not settled, webhooks not settled), from Postgres."""
    from store.models import Case, NotificationRow, WebhookDeliveryRow

    async with engine.connect() as conn:
        open_cases = await conn.scalar(
            select(func.count()).select_from(Case).where(Case.status.not_in(DONE_STATUSES))
        )
        messages = await conn.scalar(
            select(func.count())
            .select_from(NotificationRow)
            .where(
                NotificationRow.channel != "in_app",
                NotificationRow.status.not_in(SETTLED_MESSAGE),
            )
        )
        hooks = await conn.scalar(
            select(func.count())
            .select_from(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.status.not_in(SETTLED_WEBHOOK))
        )
    return int(open_cases or 0), int(messages or 0), int(hooks or 0)


async def workflow_states(client: Any, refs: dict[str, str]) -> dict[str, Any]:
    """ref -> the workflow's ``state`` query (a CaseSnapshot), or the exception it raised."""
    from schemas.snapshot import CaseSnapshot

    sem = asyncio.Semaphore(8)
    found: dict[str, Any] = {}

    async def one(ref: str, workflow_id: str) -> None:
        async with sem:
            try:
                handle = client.get_workflow_handle(workflow_id)
                found[ref] = await handle.query("state", result_type=CaseSnapshot)
            except Exception as e:  # not found, or the query failed: the audit says which
                found[ref] = e

    await asyncio.gather(*(one(ref, wid) for ref, wid in refs.items()))
    return found


def compare(row: Any, snap: Any, accounts: list[str], visits: list[Any]) -> list[str]:
    """How the read model of one case differs from its workflow's own state."""
    diffs = []
    for name in ("status", "stage", "resolution"):
        if getattr(row, name) != getattr(snap, name):
            diffs.append(f"{name}: row {getattr(row, name)!r} != workflow {getattr(snap, name)!r}")
    if snap.account_number is not None and accounts != [snap.account_number]:
        diffs.append(f"account: rows {accounts} != workflow {snap.account_number!r}")
    wf_visits = [(v.seq, v.stage, v.outcome, v.exited_at is not None) for v in snap.history]
    if wf_visits != visits:
        diffs.append(f"stage visits: rows {visits} != workflow {wf_visits}")
    return diffs


# ----------------------------------------------------------------------------- converge
async def converge(
    stack: Stack,
    driver: Driver,
    engine: AsyncEngine,
    client: Any,
    deadline: float,
    log: Timeline,
) -> bool:
    """Wait until every accepted case is resolved, messages and webhooks are settled, and the
    read model equals the workflows; False when the deadline comes first."""
    last = ""
    while now() < deadline:
        try:
            open_cases, messages, hooks = await unsettled(engine)
        except Exception as e:  # the database may still be coming back
            status = f"read model unreadable ({type(e).__name__})"
        else:
            status = f"{open_cases} cases open, {messages} messages and {hooks} webhooks pending"
            if open_cases == messages == hooks == 0 and driver.done() == _accepted(driver):
                snap = await read_model(engine)
                refs = {r: snap.cases[r].workflow_id for r in _refs(driver) if r in snap.cases}
                states = await workflow_states(client, refs)
                off = [
                    r
                    for r, s in states.items()
                    if isinstance(s, Exception)
                    or compare(snap.cases[r], s, snap.accounts.get(r, []), snap.visits.get(r, []))
                ]
                if not off:
                    log("converged: every case resolved, outbox settled, read model = workflows")
                    return True
                status += f", {len(off)} read-model rows differ from their workflow"
        if status != last:
            log(f"converging: {status}")
            last = status
        await asyncio.sleep(5)
    log(f"NOT converged by the deadline: {last}")
    return False


def _refs(driver: Driver) -> set[str]:
    return {ref for c in driver.cases for ref in c.refs}


def _accepted(driver: Driver) -> int:
    return sum(1 for c in driver.cases if c.created)


# -------------------------------------------------------------------------------- audit
async def audit(stack: Stack, driver: Driver, engine: AsyncEngine, client: Any, f: Figures) -> None:
    accepted = [c for c in driver.cases if c.created]
    f.accepted = len(accepted)
    f.not_accepted = sum(1 for c in driver.cases if not c.created)
    snap = await read_model(engine)

    # --- cases: lost, duplicated, stuck, read model vs workflow -----------------------------
    workflows: Counter[str] = Counter()
    async for execution in client.list_workflows(""):
        workflows[execution.id] += 1
    for wid, runs in workflows.items():
        if runs > 1:
            f.duplicate_cases += runs - 1
            f.example("duplicate_cases", f"workflow {wid} ran {runs} times")
    known_workflows = {row.workflow_id for row in snap.cases.values()}
    for wid in set(workflows) - known_workflows:
        if wid.startswith(("onboarding-", "demo-onboarding-")):
            f.duplicate_cases += 1
            f.example("duplicate_cases", f"workflow {wid} has no case row")
    for case in accepted:
        if len(case.refs) > 1:
            f.duplicate_cases += len(case.refs) - 1
            f.example("duplicate_cases", f"key {case.key} answered with {sorted(case.refs)}")
    by_key = Counter(row.idempotency_key for row in snap.cases.values() if row.idempotency_key)
    f.duplicate_cases += sum(n - 1 for n in by_key.values() if n > 1)
    ours = _refs(driver)
    strays = [ref for ref in snap.cases if ref not in ours and _is_chaos_key(snap.cases[ref])]
    for ref in strays:  # a case row for one of our keys that the API never told us about
        f.duplicate_cases += 1
        f.example("duplicate_cases", f"row {ref} (key {snap.cases[ref].idempotency_key})")

    refs = {c.ref: snap.cases[c.ref].workflow_id for c in accepted if c.ref in snap.cases}
    states = await workflow_states(client, refs)
    differing: dict[str, list[str]] = {}
    for case in accepted:
        if case.ref is None:
            continue
        ref = case.ref
        row = snap.cases.get(ref)
        state = states.get(ref)
        if row is None or state is None or _not_found(state):
            f.lost += 1
            f.example("lost", f"{ref}: row={'yes' if row else 'no'} workflow={state!r}"[:300])
            continue
        if isinstance(state, Exception):
            f.stuck += 1
            f.example("stuck", f"{ref}: state query failed: {state!r}"[:300])
            continue
        done = (
            row.status in DONE_STATUSES
            and state.status in DONE_STATUSES
            and row.resolution == state.resolution == "completed"
        )
        if done:
            f.completed += 1
        else:
            f.stuck += 1
            f.example(
                "stuck",
                f"{ref}: row {row.status}/{row.stage}, workflow {state.status}/"
                f"{state.stage} awaiting {state.awaiting!r}",
            )
        diffs = compare(row, state, snap.accounts.get(ref, []), snap.visits.get(ref, []))
        if diffs:
            differing[ref] = diffs
    for ref, diffs in (await still_differing(engine, client, refs, differing)).items():
        f.read_model_mismatches += 1
        f.example("read_model_mismatches", f"{ref}: " + "; ".join(diffs)[:400])
    for ref, numbers in snap.accounts.items():
        if len(numbers) > 1:
            f.duplicate_accounts += len(numbers) - 1
            f.example("duplicate_accounts", f"{ref}: {numbers}")

    # --- messages: what the providers accepted against the outbox ---------------------------
    rows = [n for n in snap.notifications if n.channel in ("email", "sms")]
    status_count = Counter(n.status for n in rows)
    f.messages_unconfirmed = status_count["unconfirmed"]
    f.messages_rejected = status_count["rejected"]
    f.messages_fallback = status_count["fallback"]
    f.messages_unsettled = sum(n for s, n in status_count.items() if s not in SETTLED_MESSAGE)
    for n in rows:
        if n.status == "unconfirmed":
            f.example("messages_unconfirmed", f"{n.outbox_key}: {n.error}"[:300])

    emails: Counter[str] = Counter()
    for mail in list(stack.sendgrid.accepted):
        key = (mail.body.get("custom_args") or {}).get("idempotency_key", "?")
        emails[key] += 1
    texts = match_sms(list(stack.twilio.messages), [n for n in rows if n.channel == "sms"])
    for key in [k for k in texts if k.startswith("?")]:
        f.sms_unrecorded += texts.pop(key)
        f.example("sms_unrecorded", key)
    f.emails_accepted = sum(emails.values())
    f.sms_accepted = sum(texts.values()) + f.sms_unrecorded
    for kind, counted in (("duplicate_emails", emails), ("duplicate_sms", texts)):
        for key, n in counted.items():
            if n > 1:
                setattr(f, kind, getattr(f, kind) + n - 1)
                f.example(kind, f"{key} accepted {n} times")
    # one notice, one external channel: an email AND an SMS for the same message is twice
    channels: dict[str, set[str]] = defaultdict(set)
    for key in (*emails, *texts):
        base, _, channel = key.partition(":staff-")[0].rpartition(":")
        if base:
            channels[base].add(channel)
    for base, used in channels.items():
        if len(used) > 1:
            f.cross_channel_duplicates += 1
            f.example("cross_channel_duplicates", f"{base} went out by {sorted(used)}")
    accepted_keys = {**emails, **texts}
    for n in rows:
        got = accepted_keys.get(n.outbox_key, 0)
        if n.status == "sent" and got == 0:
            f.sent_not_accepted += 1
            f.example("sent_not_accepted", n.outbox_key)
        elif n.status != "sent" and got:
            f.accepted_not_sent += 1
            f.example("accepted_not_sent", f"{n.outbox_key} is {n.status}")

    # --- webhooks -------------------------------------------------------------------------
    hooks = stack.hooks
    f.webhooks_processed = len(hooks.processed)
    f.webhooks_redelivered = sum(hooks.redelivered.values())
    for (ref, event_type), ids in hooks.duplicates().items():
        f.duplicate_webhooks += len(ids) - 1
        f.example("duplicate_webhooks", f"{ref} {event_type} under {ids}")
    processed = {(p.case_ref, p.event_type) for p in hooks.processed.values()}
    logged = {(w.case_ref, w.event_type): w.status for w in snap.webhooks}
    f.webhooks_dead_letter = sum(1 for w in snap.webhooks if w.status == "dead_letter")
    for case in accepted:
        for event_type in EXPECTED_WEBHOOKS:
            key = (case.ref or "", event_type)
            if key not in processed and logged.get(key) != "dead_letter":
                f.webhooks_missing += 1
                f.example("webhooks_missing", f"{key[0]} {event_type}: log says {logged.get(key)}")

    # --- the API and the processes ----------------------------------------------------------
    http = driver.http_log
    f.api_requests = sum(http.counts.values())
    f.api_503 = http.counts["503"]
    f.api_503_without_retry_after = http.unavailable_without_retry_after
    f.api_other_5xx = http.other_5xx
    for line in http.server_errors:
        f.example("api_other_5xx", line)
    f.api_refusals = dict(http.refusals.most_common(6))
    behind = [c.behind_max for c in driver.cases if c.behind_max > 0]
    f.read_model_behind_cases = len(behind)
    f.read_model_behind_max_seconds = round(max(behind, default=0.0), 1)
    lags = sorted(
        c.done_at - c.decided_at for c in driver.cases if c.done_at and c.decided_at is not None
    )
    if lags:
        f.resolve_lag_p50 = round(lags[len(lags) // 2], 1)
        f.resolve_lag_p95 = round(lags[min(len(lags) - 1, int(len(lags) * 0.95))], 1)
        f.resolve_lag_max = round(lags[-1], 1)
    f.api_no_answer = sum(http.transport_errors.values())
    if http.transport_errors:
        f.example("api_no_answer", str(dict(http.transport_errors)))
    f.crashes = len(stack.crashes)
    for line in stack.crashes:
        f.example("crashes", line)
    f.injected = {
        s.name: dict(s.injected) for s in (stack.sendgrid, stack.twilio, stack.hooks) if s.injected
    }


def match_sms(messages: list[dict[str, Any]], rows: list[Any]) -> Counter[str]:
    """Outbox key -> SMS the provider accepted for it. Twilio carries no key, so messages are
    matched on (to, body with links masked); several rows may read the same (a reminder sent
    twice), so each group's messages go to its rows one each, 'sent' rows first, and any
    message beyond the group's rows counts against its first row (a duplicate). A message
    matching no row is keyed ``?to body``."""
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for n in sorted(rows, key=lambda n: (n.status != "sent", n.id)):
        groups[(n.recipient, sms_text(n.body_text))].append(n)
    received: Counter[tuple[str, str]] = Counter((m["to"], sms_text(m["body"])) for m in messages)
    counted: Counter[str] = Counter()
    for group, n in received.items():
        candidates = groups.get(group)
        if not candidates:
            counted[f"?{group[0]} {group[1][:60]!r}"] += n
            continue
        for i in range(n):
            counted[candidates[min(i, len(candidates) - 1)].outbox_key] += 1
    return counted


async def still_differing(
    engine: AsyncEngine, client: Any, refs: dict[str, str], differing: dict[str, list[str]]
) -> dict[str, list[str]]:
    """The differences that outlast ``RECHECK_SECONDS``: a case may close (the demo type
    closes 10 minutes after resolving) between the workflow's answer and the row's write."""
    deadline = now() + RECHECK_SECONDS
    while differing and now() < deadline:
        await asyncio.sleep(5)
        snap = await read_model(engine)
        states = await workflow_states(client, {r: refs[r] for r in differing})
        differing = {
            ref: diffs
            for ref in differing
            if not isinstance(states[ref], Exception)
            and (
                diffs := compare(
                    snap.cases[ref],
                    states[ref],
                    snap.accounts.get(ref, []),
                    snap.visits.get(ref, []),
                )
            )
        }
    return differing


def dump_standins(stack: Stack, path: Any) -> None:
    """What the stand-ins accepted and processed, for evidence (kept with the logs)."""
    data = {
        "sendgrid_accepted": [
            {
                "message_id": m.message_id,
                "key": (m.body.get("custom_args") or {}).get("idempotency_key"),
                "to": [
                    t.get("email")
                    for p in m.body.get("personalizations", [])
                    for t in p.get("to", [])
                ],
                "subject": m.body.get("subject"),
            }
            for m in list(stack.sendgrid.accepted)
        ],
        "twilio_messages": [
            {k: m[k] for k in ("sid", "to", "body", "date_created")}
            for m in list(stack.twilio.messages)
        ],
        "webhooks_processed": [
            {"id": w.webhook_id, "type": w.event_type, "case": w.case_ref}
            for w in list(stack.hooks.processed.values())
        ],
        "webhooks_redelivered": dict(stack.hooks.redelivered),
        "requests": {
            s.name: [
                {
                    "method": r.method,
                    "path": r.path,
                    "status": r.response_status,
                    "injected": r.injected_failure,
                    "stalled": r.stalled,
                    "key": ((r.json or {}).get("custom_args") or {}).get("idempotency_key")
                    if isinstance(r.json, dict)
                    else None,
                    "to": r.form.get("To"),
                }
                for r in list(s.requests)
            ]
            for s in (stack.sendgrid, stack.twilio, stack.hooks)
        },
    }
    path.write_text(json.dumps(data, indent=1, default=str))


def _not_found(state: Any) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    return isinstance(state, RPCError) and state.status == RPCStatusCode.NOT_FOUND


def _is_chaos_key(row: Any) -> bool:
    return bool(row.idempotency_key and str(row.idempotency_key).startswith("chaos-"))


async def temporal_client(stack: Stack) -> Any:
    from temporalio.client import Client

    from core.codec import data_converter

    last: Exception | None = None
    for _ in range(30):
        try:
            return await Client.connect(
                stack.temporal.address, data_converter=data_converter(stack.payload_keys)
            )
        except Exception as e:  # the server may be restarting
            last = e
            await asyncio.sleep(1)
    raise RuntimeError(f"cannot connect to Temporal: {last!r}")


async def dispose(engine: AsyncEngine) -> None:
    with contextlib.suppress(Exception):
        await engine.dispose()
