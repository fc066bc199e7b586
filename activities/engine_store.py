"""The case engine's read-model writes and outbox flush.

``project`` writes one ``EngineProjection`` in one transaction, idempotently. A projection
the database refuses for what it *contains* (a NUL byte, a lone surrogate, a value too long,
a missing case row) is dead-lettered: stored in ``projection_dead_letters``, logged as an
error, and reported back, never retried, so the read model can never wedge a case. Anything
else (the database down, a timeout, a serialisation failure) raises, and Temporal retries.

``sync`` flushes the engine's outbox: the projection that rides along, then each message
through ``NotificationActivities.notify`` and each webhook through
``WebhookActivities.deliver``. Both are keyed (outbox key, event id), so a retried sync
never sends anything twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError, StatementError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notifications import LOCAL_OUTBOX, REJECTED, SENT, NotificationActivities
from activities.webhooks import DEAD_LETTER, DELIVERED, WebhookActivities
from core.metrics import (
    DEAD_LETTERS,
    SLA_EVENT_COUNTERS,
    STAGE_ENTERED_EVENT,
    STAGE_ENTRIES,
    STAGE_EXITS,
    count,
)
from schemas.case_state import ElementState, PauseRecord, StageVisit, Vote
from schemas.contracts import (
    PROJECT_CASE,
    SYNC_CASE,
    EngineProjection,
    ProjectResult,
    SyncCaseInput,
    SyncCaseResult,
)
from schemas.notifications import NotifyInput
from schemas.webhooks import WebhookEvent
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.history import record_closed_case
from store.models import (
    Case,
    CaseEvent,
    CasePauseRow,
    CaseTaskRow,
    ProjectionDeadLetter,
    StageIntervalRow,
)

# Element kinds a person (staff or client) acts on: "manual" in case_tasks.kind.
HUMAN_KINDS = frozenset({"task", "approval", "checklist", "documents", "client_acceptance"})
# Element statuses that close a task in the "my tasks" queues.
DONE_STATUSES = frozenset({"done", "skipped", "not_applicable"})
# SQLSTATE classes of a refused *value*: 22 data exception, 23 integrity violation.
DATA_SQLSTATE_CLASSES = ("22", "23")
ERROR_TEXT_LIMIT = 500
ENGINE = "case"  # cases.engine of every case this engine owns
RECORDED = "recorded"  # notify's status for the in-app copy
DELIVERED_OUTCOME, FAILED_OUTCOME, NOTHING_OUTCOME = "delivered", "failed", "nothing"

_VOTES = TypeAdapter(list[Vote])
_LONG_QUOTED = re.compile(r"'[^']{17,}'|\"[^\"]{17,}\"")
_ARGUMENT = re.compile(r"^(invalid input for query argument \$\d+): .*?(\([^()]*\))?$", re.DOTALL)


class CaseRowMissing(Exception):
    """The projection names a case the read model has no row for, and carries no seed."""


@dataclass
class _Firsts:
    """What one projection wrote for the first time, counted once its transaction commits
    (core/metrics.py): audit events it inserted (a replayed event's row exists already, so
    it is not counted twice) and stage visits it closed."""

    case_type: str | None = None
    events: list[tuple[str, str | None]] = field(default_factory=list)  # (kind, stage)
    exits: list[StageVisit] = field(default_factory=list)

    def record(self) -> None:
        for kind, stage in self.events:
            if kind == STAGE_ENTERED_EVENT:
                count(STAGE_ENTRIES, case_type=self.case_type, stage=stage)
            elif kind in SLA_EVENT_COUNTERS:
                count(SLA_EVENT_COUNTERS[kind], case_type=self.case_type, stage=stage)
        for visit in self.exits:
            count(
                STAGE_EXITS,
                case_type=self.case_type,
                stage=visit.stage,
                outcome=visit.outcome,
                sla_outcome=visit.sla_outcome,
            )


# ====================================================================== error triage
def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, wherever the driver adapter keeps it."""
    for candidate in (getattr(exc, "orig", None), exc, exc.__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_data_error(exc: BaseException) -> bool:
    """True when the *data* was refused, so retrying the same write can never succeed.

    With asyncpg, Postgres data errors arrive as a generic ``DBAPIError`` (not ``DataError``):
    the SQLSTATE class tells them apart. Client-side encoding (lone surrogates) and JSON
    serialisation failures arrive as a ``StatementError`` whose ``orig`` is a Unicode, value
    or type error. Connection and operational failures are never data errors.
    """
    if isinstance(exc, CaseRowMissing | IntegrityError | UnicodeError):
        return True
    if isinstance(exc, OSError):  # includes TimeoutError and ConnectionError
        return False
    if isinstance(exc, StatementError):
        code = _sqlstate(exc)
        if code is not None:
            return code[:2] in DATA_SQLSTATE_CLASSES
        orig = exc.orig
        return isinstance(orig, UnicodeError | ValueError | TypeError) and not isinstance(
            orig, OSError
        )
    return isinstance(exc, ValueError)


def _root(exc: BaseException) -> BaseException:
    """The driver's own exception behind SQLAlchemy's wrappers."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        orig: BaseException = exc.orig
        return orig.__cause__ if orig.__cause__ is not None else orig  # asyncpg adapter
    return exc


def describe_error(exc: BaseException) -> str:
    """A short, PII-light, ASCII-only account of a refused write.

    Never ``str(exc)`` of a SQLAlchemy error: it carries the statement's parameters (client
    data, and the very NUL byte that was refused). The driver's primary message is kept,
    with long quoted values (an argument's repr) cut out.
    """
    root = _root(exc)
    message = getattr(root, "message", None)
    if not isinstance(message, str):
        message = str(root.args[0]) if root.args else ""
    message = " ".join(message.split())
    match = _ARGUMENT.match(message)
    if match:  # asyncpg: "invalid input for query argument $6: '<value>' (<why>)"
        message = " ".join(part for part in match.groups() if part)
    else:
        message = _LONG_QUOTED.sub("'...'", message)
    code = _sqlstate(exc)
    text = f"{type(root).__name__}{f' sqlstate={code}' if code else ''}: {message}"
    return _ascii(text)[:ERROR_TEXT_LIMIT]


def dead_letter_payload(p: EngineProjection) -> str:
    """The projection as ASCII-only JSON: NULs and lone surrogates survive as escapes."""
    try:
        data: Any = p.model_dump(mode="json")
    except Exception as exc:  # pragma: no cover - a validated model always dumps
        data = {"case_ref": p.case_ref, "version": p.version, "unserialisable": type(exc).__name__}
    return json.dumps(data, ensure_ascii=True, default=str)


# ====================================================================== row mapping
def _visit_values(visit: StageVisit) -> dict[str, Any]:
    return {
        "seq": visit.seq,
        "stage": visit.stage,
        "entered_at": visit.entered_at,
        "exited_at": visit.exited_at,
        "outcome": visit.outcome,
        "sla_budget_seconds": visit.sla_budget_seconds,
        "sla_outcome": visit.sla_outcome,
        "active_seconds": visit.active_seconds,
        "paused_seconds": visit.paused_seconds,
        "escalations": visit.escalations,
    }


def _pause_values(pause: PauseRecord) -> dict[str, Any]:
    return {
        "seq": pause.seq,
        "stage": pause.stage,
        "paused_at": pause.paused_at,
        "paused_by": pause.paused_by,
        "reason": pause.reason,
        "resumed_at": pause.resumed_at,
        "resumed_by": pause.resumed_by,
        "resume_reason": pause.resume_reason,
    }


def element_values(element: ElementState) -> dict[str, Any]:
    """One ``ElementState`` as a ``case_tasks`` row (the frozen columns filled sensibly)."""
    status = str(element.status)
    return {
        "key": element.key,
        "title": element.title,
        "stage": element.stage,
        "kind": "manual" if element.kind in HUMAN_KINDS else "auto",
        "assignee_role": element.assignee_role,
        "done": status in DONE_STATUSES,
        "done_by": element.done_by,
        "done_at": element.finished_at,
        "element_kind": element.kind,
        "status": status,
        "due_at": element.due_at,
        "outcome": element.outcome,
        "note": element.note,
        "required": element.required,
        "votes": _VOTES.dump_python(list(element.votes), mode="json"),
        "ticked": dict(element.ticked),
        "overdue": bool(element.overdue),
        "assignee": element.assignee,
        "assignee_team": element.assignee_team,
        "assigned_at": element.assigned_at,
        "roles": list(element.roles) or None,
        "opened_at": element.opened_at,
    }


EVENTS: Table = CaseEvent.__table__  # type: ignore[assignment]  # Core: no ORM bulk path


class EngineStoreActivities:
    """The engine's read-model projection and outbox flush, with injected delivery."""

    def __init__(
        self,
        session_factory: SessionFactory,
        notifications: NotificationActivities | None = None,
        webhooks: WebhookActivities | None = None,
    ) -> None:
        self._sessions = session_factory
        self._notifications = notifications
        self._webhooks = webhooks

    # ================================================================== project
    @activity.defn(name=PROJECT_CASE)
    async def project(self, p: EngineProjection) -> ProjectResult:
        """Apply one projection in one transaction; dead-letter it if its data is refused.

        ``written`` is True when this call moved the case row to ``p.version``; a replay of
        the same version, or an older one, leaves the row alone (its keyed rows are still
        upserted, each guarded by the version that last wrote it).
        """
        return await self.apply(p)

    async def apply(self, p: EngineProjection) -> ProjectResult:
        try:
            written = await self._write(p)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            await self._dead_letter(p, exc)
            # Keep the read model current: the same rows with the offending text cleaned
            # (control characters dropped, lone surrogates replaced). The original stays in
            # the dead letter for an operator.
            try:
                await self._write(cleaned(p))
            except Exception as again:
                if not is_data_error(again):
                    raise
            return ProjectResult(written=False, dead_lettered=True)
        activity.logger.debug(
            "engine projection case=%s version=%s written=%s", p.case_ref, p.version, written
        )
        return ProjectResult(written=written)

    async def _write(self, p: EngineProjection) -> bool:
        tasks = [element_values(e) for e in p.elements]  # serialise before opening anything
        firsts = _Firsts()
        async with self._sessions.begin() as session:
            if p.seed is not None:  # a case nobody inserted first (subprocess child, CLI)
                seed = p.seed
                await session.execute(
                    insert_draft_case(
                        ref=p.case_ref,
                        client=seed.client,
                        requested_by=seed.requested_by,
                        case_type=seed.case_type,
                        case_type_version=seed.case_type_version,
                        engine=ENGINE,
                        data=seed.data,
                        workflow_id=seed.workflow_id,
                        first_stage=seed.first_stage,
                        access_roles=seed.access_roles,
                    )
                )
            # Lock the case row: projections of one case apply one at a time.
            locked = (
                await session.execute(
                    select(Case.projection_version, Case.case_type)
                    .where(Case.ref == p.case_ref)
                    .with_for_update()
                )
            ).first()
            if locked is None:
                raise CaseRowMissing(f"no case row for {p.case_ref}")
            firsts.case_type = locked.case_type
            patch = p.case.values()
            moved = await session.execute(
                update(Case)
                .where(
                    Case.ref == p.case_ref,
                    # a rebuild rewrites the version the workflow last wrote; else only forward
                    (Case.projection_version <= p.version)
                    if p.rebuild
                    else (Case.projection_version < p.version),
                )
                .values(**patch, projection_version=p.version, updated_at=p.at)
                .returning(Case.ref)
            )
            written = moved.first() is not None
            # one statement per table, however many rows (round trips are the cost here)
            firsts.exits = await _closing_now(session, p)
            await self._upsert(
                session,
                StageIntervalRow,
                "uq_stage_intervals_case_seq",
                "seq",
                p,
                [_visit_values(v) for v in p.visits],
            )
            await self._upsert(
                session,
                CasePauseRow,
                "uq_case_pauses_case_seq",
                "seq",
                p,
                [_pause_values(x) for x in p.pauses],
            )
            await self._upsert(session, CaseTaskRow, "uq_case_tasks_case_key", "key", p, tasks)
            if p.events:
                inserted = await session.execute(
                    insert(EVENTS)
                    .values(
                        [
                            {
                                "case_ref": p.case_ref,
                                "event_key": event.key,
                                "kind": event.kind,
                                "actor": event.actor,
                                "detail": event.detail,
                                "occurred_at": event.at or p.at,
                            }
                            for event in p.events
                        ]
                    )
                    .on_conflict_do_nothing(constraint="uq_case_events_case_key")
                    .returning(EVENTS.c.kind, EVENTS.c.detail["stage"].astext)
                )
                firsts.events = [(kind, stage) for kind, stage in inserted]
            # Case history: the write that ends a case records its finished stage visits in
            # history_intervals (store/history.py), in this transaction; idempotent. Not only
            # when the case row moved: a workflow task run again after its local activity
            # wrote the end sends the same version with later times, which the visit rows
            # above take (``<=``) and the recorded rows must follow.
            if p.case.status in ("closed", "cancelled"):
                await record_closed_case(session, p.case_ref)
        firsts.record()
        return written

    @staticmethod
    async def _upsert(
        session: Any,
        model: type[StageIntervalRow] | type[CasePauseRow] | type[CaseTaskRow],
        constraint: str,
        key: str,
        p: EngineProjection,
        rows: list[dict[str, Any]],
    ) -> None:
        """Insert or update keyed rows in one statement; a row a newer projection already
        wrote is left alone."""
        if not rows:
            return
        table: Table = model.__table__  # type: ignore[assignment]  # Core: no ORM overhead
        stmt = insert(table).values(
            [{"case_ref": p.case_ref, "projection_version": p.version, **r} for r in rows]
        )
        changed = [k for k in rows[0] if k != key] + ["projection_version"]
        await session.execute(
            stmt.on_conflict_do_update(
                constraint=constraint,
                set_={k: stmt.excluded[k] for k in changed},
                where=func.coalesce(table.c.projection_version, 0) <= p.version,
            )
        )

    async def _dead_letter(self, p: EngineProjection, exc: BaseException) -> None:
        """Keep the refused projection for an operator (fresh transaction), and alert."""
        error = describe_error(exc)
        async with self._sessions.begin() as session:
            await session.execute(
                insert(ProjectionDeadLetter).values(
                    case_ref=_ascii(p.case_ref)[:64],
                    version=p.version,
                    error=error,
                    payload=dead_letter_payload(p),
                )
            )
        count(DEAD_LETTERS)
        # Never the payload: it may hold client data.
        activity.logger.error(
            "projection dead-lettered case=%s version=%s error=%s",
            _ascii(p.case_ref),
            p.version,
            error,
        )

    # ================================================================== sync
    @activity.defn(name=SYNC_CASE)
    async def sync(self, inp: SyncCaseInput) -> SyncCaseResult:
        """Projection (if any), then messages, then webhooks; each sent at most once.

        A message or webhook that fails for good is named in ``failed`` and the sync carries
        on; a transient failure raises so Temporal retries the whole sync. That is safe:
        the projection is idempotent, ``notify`` never re-sends an outbox row that is
        settled (sent, local, fallback, rejected) or may have gone out (``unconfirmed``),
        and ``deliver`` never re-sends a delivered or dead-lettered event.
        """
        result = SyncCaseResult()
        if inp.projection is not None:
            result.dead_lettered = (await self.apply(inp.projection)).dead_lettered
        outcomes: list[tuple[str, str]] = []
        transient: list[ApplicationError] = []
        # A transient failure of one item must not hold back the others (a message in doubt
        # may wait minutes for its provider's log): finish the batch, then raise.
        for message in inp.messages:
            activity.heartbeat(f"notify {message.milestone}")
            try:
                outcomes.append(await self._notify(message))
            except ApplicationError as exc:
                transient.append(exc)
        for event in inp.webhooks:
            activity.heartbeat(f"webhook {event.event_id}")
            try:
                outcomes.append(await self._deliver(event))
            except ApplicationError as exc:
                if exc.non_retryable:
                    raise
                transient.append(exc)
        if transient:  # the soonest retry wins: settled items are skipped next time
            raise min(transient, key=_retry_delay)
        for outcome, label in outcomes:
            if outcome == DELIVERED_OUTCOME:
                result.delivered += 1
            elif outcome == FAILED_OUTCOME:
                result.failed.append(label)
        return result

    async def _notify(self, message: NotifyInput) -> tuple[str, str]:
        """(outcome, label) of one message; a transient failure raises."""
        label = f"notify:{message.milestone}:{message.occurrence}:{message.audience}"
        if self._notifications is None:
            return FAILED_OUTCOME, f"{label}:no_notifier"
        try:
            sent = await self._notifications.notify(message)
        except ApplicationError as exc:
            if not exc.non_retryable:
                raise  # transient: Temporal retries the whole sync
            activity.logger.warning(
                "sync case=%s message failed for good: %s (%s)", message.case_ref, label, exc.type
            )
            return FAILED_OUTCOME, f"{label}:{exc.type or 'error'}"
        statuses = {r.status for r in sent.results}
        if REJECTED in statuses:  # every external channel refused it for good
            return FAILED_OUTCOME, f"{label}:rejected"
        if statuses & {SENT, LOCAL_OUTBOX, RECORDED}:
            return DELIVERED_OUTCOME, label
        return NOTHING_OUTCOME, label  # every channel skipped, or unconfirmed (staff follow up)

    async def _deliver(self, event: WebhookEvent) -> tuple[str, str]:
        """(outcome, label) of one webhook; a failed attempt within the budget raises."""
        label = f"webhook:{event.event_type}:{event.event_id}"
        if self._webhooks is None:
            return FAILED_OUTCOME, f"{label}:no_sender"
        delivery = await self._webhooks.deliver(event)
        if delivery.status == DELIVERED:
            return DELIVERED_OUTCOME, label
        if delivery.status == DEAD_LETTER:
            return FAILED_OUTCOME, f"{label}:dead_letter"
        return NOTHING_OUTCOME, label  # skipped: no endpoint configured


async def _closing_now(session: Any, p: EngineProjection) -> list[StageVisit]:
    """The visits this projection closes that the read model still has open (or has not
    seen): one read, only when the projection closes a visit."""
    closing = {v.seq: v for v in p.visits if v.exited_at is not None}
    if not closing:
        return []
    closed = await session.scalars(
        select(StageIntervalRow.seq).where(
            StageIntervalRow.case_ref == p.case_ref,
            StageIntervalRow.seq.in_(list(closing)),
            StageIntervalRow.exited_at.is_not(None),
        )
    )
    already = set(closed.all())
    return [visit for seq, visit in closing.items() if seq not in already]


def _retry_delay(exc: ApplicationError) -> float:
    """When the error asks to be retried (0: Temporal's own backoff)."""
    return exc.next_retry_delay.total_seconds() if exc.next_retry_delay else 0.0


def _ascii(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)[1:-1]


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", _UNPRINTABLE.sub("", value))
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def cleaned(p: EngineProjection) -> EngineProjection:
    """The projection with every string made safe for Postgres text and JSONB."""
    return EngineProjection.model_validate(_clean(p.model_dump(mode="python")))
