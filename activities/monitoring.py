"""Sanctions monitoring: load a list version, re-screen every client, raise and route alerts.

* ``load_and_rescreen`` (``onboarding sanctions load``, and the watch schedule's activity):
  install the list files atomically where the worker reads them, record the version, start
  ``RescreenClients`` as ``rescreen-<version>`` (once per version, ever);
* ``rescreen_batch``: screen a batch of clients against the lists now installed, write an
  alert per hit at or above the threshold that this client never had for this entry *as it
  now reads* (``sanctions_alerts`` is unique on client, entry and entry content hash), and
  open a ``sanctions_alert`` case per alert under the alert's own reference; both steps are
  keyed, so a batch retried after a crash redoes only what is missing;
* ``record_alert_outcome`` / ``escalate_client_case``: the alert case's automations.

See docs/sanctions-monitoring.md.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.compliance import entity_type_for, subject_for
from core.metrics import SCREENING_HITS, count
from core.settings import BUNDLED_SDN, Settings
from integrations.sanctions import ScreeningResult, ScreeningSubject
from integrations.sanctions.catalog import (
    ListCatalog,
    ListFileError,
    ListFiles,
    ListKind,
    MonitoredLists,
    candidate,
    files_version,
    hit_record,
    install,
    load_lists,
    sniff_kind,
    source_files,
)
from integrations.sanctions.pool import (
    MIN_CHUNK,
    ScreeningPool,
    VersionMismatch,
    default_processes,
)
from playbooks.launch import ENGINE, load_registry, open_engine_case
from playbooks.registry import CaseTypeRegistry
from schemas.client import ClientProfile
from schemas.commands import PauseRequest
from schemas.contracts import AutomationInput, AutomationResult
from schemas.engine_commands import CommandResult, PauseCase
from schemas.enums import ClientType
from schemas.monitoring import (
    ALERT_CASE_TYPE,
    CHECK_SANCTIONS_SOURCE,
    FINISH_RESCREEN,
    MONITORING_ACTOR,
    RESCREEN_BATCH,
    RESCREEN_WORKFLOW,
    FinishRescreenInput,
    FinishRescreenResult,
    LoadResult,
    RescreenBatchInput,
    RescreenBatchResult,
    RescreenInput,
    WatchInput,
    WatchResult,
    alert_id_for,
    rescreen_workflow_id,
)
from schemas.snapshot import CaseSnapshot
from store import sanctions as db
from store.db import SessionFactory
from store.models import Case, SanctionsAlert, SanctionsListVersion, ScreeningRow

log = logging.getLogger(__name__)

T = TypeVar("T")

HEARTBEAT_EVERY = 1.0
DOWNLOAD_LIMIT = 512 * 1024 * 1024  # bytes; the full OpenSanctions default export is smaller
OPEN_STATUSES = ("open", "waiting_on_client")
UPDATE_TIMEOUT = 60.0  # seconds to wait for the client case to take its pause


def configured_files(settings: Settings) -> ListFiles:
    """The list files the worker screens against (``SANCTIONS_*_PATH``)."""
    return ListFiles(
        sdn=settings.sanctions_sdn_path,
        alt=settings.sanctions_alt_path if settings.sanctions_sdn_path else None,
        opensanctions=settings.sanctions_opensanctions_path,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidAutomationInput", non_retryable=True)


async def heartbeating(work: Awaitable[T], what: str) -> T:
    """Await ``work`` while heart-beating, so a long step is not mistaken for a dead worker
    (and a dead worker is noticed within the heartbeat timeout)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
            activity.heartbeat(what)
    finally:
        if not task.done():
            task.cancel()


def in_thread(fn: Callable[[], T], what: str) -> Awaitable[T]:
    return heartbeating(asyncio.to_thread(fn), what)


# ----------------------------------------------------------------------------- loading a version
def _protected(path: Path) -> bool:
    """The list bundled with the package is never overwritten (it is part of the build)."""
    try:
        path.resolve().relative_to(BUNDLED_SDN.resolve())
    except ValueError:
        return False
    return True


async def load_and_rescreen(
    *,
    settings: Settings,
    sessions: SessionFactory,
    temporal: Client,
    given: dict[ListKind, Path],
    source: str,
    loaded_by: str,
    task_queue: str | None = None,
    only_if_new: bool = False,
) -> LoadResult | None:
    """Install ``given`` (kind -> file) where the worker reads the lists, record the version
    they make together with the other configured lists, and start its re-screen.

    Idempotent: the same files again install nothing, record nothing and start nothing (the
    re-screen's workflow id is ``rescreen-<version>``). ``only_if_new`` (the watch): return
    None when these files are the version already installed and recorded. Raises
    ``ListFileError`` for a file that is not a list, has no entries, or whose kind the
    settings do not configure.
    """
    configured = configured_files(settings)
    files = candidate(configured, given)
    for kind in given:
        dest = getattr(configured, kind)
        if dest is not None and _protected(Path(dest)):
            setting = f"SANCTIONS_{'OPENSANCTIONS' if kind == 'opensanctions' else kind.upper()}"
            raise ListFileError(
                f"{setting}_PATH is the list bundled with the service ({dest}); point it at a "
                "writable file (e.g. under DATA_DIR) before loading lists"
            )
    version, _ = await asyncio.to_thread(files_version, files)
    if only_if_new:
        async with sessions() as session:
            recorded = await session.get(SanctionsListVersion, version)
        try:
            installed_version, _ = await asyncio.to_thread(files_version, configured)
        except ListFileError:
            installed_version = None
        if recorded is not None and installed_version == version:
            return None
    loaded = await asyncio.to_thread(load_lists, files)  # refuses a file with no entries
    written = await asyncio.to_thread(install, configured, given)
    workflow_id = rescreen_workflow_id(loaded.version)
    async with sessions.begin() as session:
        new_version = await db.record_version(
            session,
            version=loaded.version,
            loaded_at=_now(),
            loaded_by=loaded_by,
            source=source,
            files={
                kind: {
                    "path": str(getattr(configured, kind)),
                    "sha256": loaded.digests[kind],
                    **({"from": str(given[kind])} if kind in given else {}),
                }
                for kind, _ in files.present()
            },
            entry_count=loaded.entry_count,
            rescreen_workflow_id=workflow_id,
        )
    started = True
    try:
        await temporal.start_workflow(
            RESCREEN_WORKFLOW,
            RescreenInput(
                version=loaded.version, batch_size=settings.sanctions_rescreen_batch_size
            ),
            id=workflow_id,
            task_queue=task_queue or settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    except WorkflowAlreadyStartedError:  # running, or ran: one re-screen per version
        started = False
    detail = f"version {loaded.version}: {loaded.entry_count} entries; " + (
        "re-screen started" if started else "its re-screen was started before"
    )
    log.info("sanctions lists loaded from %s: %s", source, detail)
    return LoadResult(
        version=loaded.version,
        new_version=new_version,
        installed=[str(p) for p in written],
        entry_count=loaded.entry_count,
        rescreen_workflow_id=workflow_id,
        rescreen_started=started,
        detail=detail,
    )


# ----------------------------------------------------------------------------- the activities
def _subject(client: db.ClientToScreen) -> ScreeningSubject | None:
    """Screen exactly as onboarding did (``subject_for``); an unreadable profile falls back to
    the name and country on the case row."""
    try:
        return subject_for(ClientProfile.model_validate(client.profile))
    except ValidationError:
        if not client.name.strip():
            return None
        return ScreeningSubject(
            name=client.name,
            country=client.country or None,
            entity_type=entity_type_for(client.client_type),
        )


def _profile_of(row: Case) -> ClientProfile:
    try:
        return ClientProfile.model_validate(row.profile)
    except ValidationError:
        return ClientProfile(
            name=row.client_name,
            email=row.client_email,
            client_type=ClientType(row.client_type),
            country=row.country,
        )


class MonitoringActivities:
    """Re-screening and alert handling, with their injected sessions, lists and Temporal."""

    def __init__(
        self,
        sessions: SessionFactory,
        settings: Settings,
        temporal: Client | None,
        *,
        catalog: ListCatalog | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._temporal = temporal
        self._catalog = catalog or ListCatalog(
            configured_files(settings), threshold=settings.sanctions_threshold
        )
        self._registry: CaseTypeRegistry | None = None
        # no more processes than a batch is ever split into (each holds its own index)
        processes = settings.sanctions_rescreen_processes or min(
            default_processes(), max(1, settings.sanctions_rescreen_batch_size // MIN_CHUNK)
        )
        self._pool = (
            ScreeningPool(
                self._catalog.files, threshold=self._catalog.threshold, processes=processes
            )
            if processes > 1
            else None
        )

    # -- plumbing
    @property
    def temporal(self) -> Client:
        if self._temporal is None:
            raise ApplicationError(
                "sanctions monitoring needs a Temporal client (build_worker passes one)",
                type="NotConfigured",
                non_retryable=True,
            )
        return self._temporal

    def registry(self) -> CaseTypeRegistry:
        if self._registry is None:
            self._registry = load_registry(self._settings)
        return self._registry

    async def _lists(self, version: str) -> MonitoredLists:
        """The lists installed now; looked at afresh when they are not ``version`` (a list
        loaded a moment ago). Files changed again since are screened as they are now."""
        try:
            lists = await in_thread(self._catalog.current, "loading the sanctions lists")
            if lists.version != version:
                lists = await in_thread(
                    lambda: self._catalog.current(force=True), "loading the sanctions lists"
                )
            return lists
        except Exception as e:
            raise ApplicationError(
                f"sanctions lists unavailable: {type(e).__name__}: {e}", type="ListsUnavailable"
            ) from e

    def _screen(
        self, lists: MonitoredLists, subjects: list[ScreeningSubject]
    ) -> list[ScreeningResult]:
        """A batch on every core (``SANCTIONS_RESCREEN_PROCESSES``); in this process when
        there is no pool, or when the pool reads other files or has lost a process."""
        if self._pool is not None and self._pool.parts(len(subjects)) > 1:
            try:
                return self._pool.screen_many(subjects, version=lists.version)
            except (VersionMismatch, BrokenProcessPool) as e:
                log.warning("screening pool unusable (%s); screening in the worker", e)
        return lists.screener.screen_many(subjects)

    # -- opening an alert's case
    async def open_alert_case(self, alert: SanctionsAlert, *, task_queue: str) -> str:
        """Open the alert's review case (its reference is the alert id), mark the client's case
        and link the alert to it. Every step is keyed on the alert: running it again after a
        crash anywhere opens nothing twice."""
        async with self._sessions() as session:
            client_row = await session.get(Case, alert.client_case_ref)
        if client_row is None:  # the FK cascades deletes: only a race with a purge gets here
            raise ApplicationError(f"client case {alert.client_case_ref} is gone", type="Gone")
        data = {
            "client_case_ref": alert.client_case_ref,
            "client_name": alert.client_name[:200],
            "list_version": alert.list_version,
            "entry_id": alert.entry_id,
            "matched_name": alert.matched_name[:500],
            "score": alert.score,
            "alert_id": alert.alert_id,
        }
        await open_engine_case(
            sessions=self._sessions,
            temporal=self.temporal,
            registry=self.registry(),
            task_queue=task_queue,
            case_type_name=ALERT_CASE_TYPE,
            ref=alert.alert_id,
            client=_profile_of(client_row),
            data=data,
            requested_by=MONITORING_ACTOR,
            request_hash=alert.alert_id,
        )
        async with self._sessions.begin() as session:
            await db.case_event(
                session,
                case_ref=alert.client_case_ref,
                key=f"sanctions_alert_opened:{alert.alert_id}",
                kind="sanctions_alert_opened",
                actor=MONITORING_ACTOR,
                detail={
                    "alert_ref": alert.alert_id,
                    "entry_id": alert.entry_id,
                    "matched_name": alert.matched_name,
                    "score": alert.score,
                    "threshold": alert.threshold,
                    "list_version": alert.list_version,
                },
                at=_now(),
            )
            await db.link_alert_case(session, alert.alert_id, alert.alert_id)
        return alert.alert_id

    async def _open_pending(self, client_refs: list[str] | None, *, task_queue: str) -> int:
        async with self._sessions() as session:
            pending = await db.alerts_without_case(session, client_refs=client_refs)
        for alert in pending:
            activity.heartbeat(f"opening {alert.alert_id}")
            await heartbeating(
                self.open_alert_case(alert, task_queue=task_queue), f"opening {alert.alert_id}"
            )
        return len(pending)

    async def _reviewed_at_onboarding(self, refs: list[str]) -> set[tuple[str, str, str]]:
        """(client, entry, entry hash) of every potential match these clients' onboarding
        screenings recorded with its entry's content hash: the onboarding review dealt with
        it, so a re-screen alerts on that entry again only once it reads differently (the
        same rule as for an alert already raised). A hit recorded without a hash (before
        onboarding kept them) or below the threshold then in force is not suppressed."""
        if not refs:
            return set()
        async with self._sessions() as session:
            screenings = (
                await session.execute(
                    select(ScreeningRow.case_ref, ScreeningRow.hits, ScreeningRow.threshold).where(
                        ScreeningRow.case_ref.in_(refs)
                    )
                )
            ).all()
        reviewed: set[tuple[str, str, str]] = set()
        for ref, hits, threshold in screenings:
            for hit in hits or ():
                entry_id, entry_hash = hit.get("entry_id"), hit.get("entry_hash")
                bar, score = hit.get("threshold", threshold), hit.get("score")
                if not (entry_id and entry_hash) or bar is None or score is None:
                    continue
                if float(score) >= float(bar):
                    reviewed.add((ref, str(entry_id), str(entry_hash)))
        return reviewed

    @activity.defn(name=RESCREEN_BATCH)
    async def rescreen_batch(self, inp: RescreenBatchInput) -> RescreenBatchResult:
        """Screen the next batch of clients; alert and open cases for new hits."""
        lists = await self._lists(inp.version)
        async with self._sessions.begin() as session:
            if inp.after_ref is None:
                await db.mark_rescreening(session, inp.version)
            clients = await db.clients_after(session, after_ref=inp.after_ref, limit=inp.limit)
        screenable: list[tuple[db.ClientToScreen, ScreeningSubject]] = []
        for client in clients:
            subject = _subject(client)
            if subject is not None:
                screenable.append((client, subject))
        subjects = [s for _, s in screenable]
        results = await in_thread(lambda: self._screen(lists, subjects), "screening")
        reviewed = await self._reviewed_at_onboarding([c.ref for c, _ in screenable])
        rows: list[dict[str, Any]] = []
        hits = 0
        for (client, _), result in zip(screenable, results, strict=True):
            for hit in result.hits:
                if hit.score < result.threshold:
                    continue
                hits += 1
                entry_hash = lists.lists.hashes.get(hit.entry_id)
                if entry_hash is None:  # pragma: no cover - the index is built from these
                    log.warning("hit on %s, an entry the lists do not hold", hit.entry_id)
                    continue
                if (client.ref, hit.entry_id, entry_hash) in reviewed:
                    continue  # the onboarding review saw this very entry: no alert
                record = hit_record(hit, threshold=result.threshold)
                rows.append(
                    {
                        "alert_id": alert_id_for(client.ref, hit.entry_id, entry_hash),
                        "client_case_ref": client.ref,
                        "client_name": client.name[:200],
                        "list_version": result.list_version,
                        "list_name": hit.list_name[:40],
                        "entry_id": hit.entry_id[:120],
                        "entry_hash": entry_hash,
                        "matched_name": hit.matched_name,
                        "score": float(hit.score),
                        "threshold": float(record["threshold"]),
                        "breakdown": record["breakdown"],
                        "explanation": hit.explanation,
                        "rescreen_workflow_id": inp.workflow_id or None,
                        "status": "open",
                    }
                )
        async with self._sessions.begin() as session:
            inserted = await db.insert_alerts(session, rows)
        count(SCREENING_HITS, len(inserted), source="rescreen")  # new alerts only
        if inserted:
            activity.logger.info(
                "re-screen %s: %d new alert(s) after %s", inp.version, len(inserted), inp.after_ref
            )
        refs = [c.ref for c in clients]
        task_queue = activity.info().task_queue
        await self._open_pending(refs, task_queue=task_queue)
        async with self._sessions() as session:
            raised, opened = await db.count_alerts(
                session, client_refs=refs, rescreen_workflow_id=inp.workflow_id
            )
        return RescreenBatchResult(
            next_after_ref=refs[-1] if refs else inp.after_ref,
            done=len(clients) < inp.limit,
            list_version=lists.version,
            clients=len(screenable),
            unscreenable=len(clients) - len(screenable),
            hits=hits,
            new_alerts=raised,
            cases_opened=opened,
        )

    @activity.defn(name=FINISH_RESCREEN)
    async def finish_rescreen(self, inp: FinishRescreenInput) -> FinishRescreenResult:
        """Open any alert case a crash left unopened (any re-screen's), record the totals."""
        recovered = await self._open_pending(None, task_queue=activity.info().task_queue)
        async with self._sessions.begin() as session:
            await db.mark_rescreened(
                session, inp.version, totals=inp.totals.model_dump(mode="json"), at=_now()
            )
        return FinishRescreenResult(cases_opened=recovered)

    @activity.defn(name=CHECK_SANCTIONS_SOURCE)
    async def check_sanctions_source(self, inp: WatchInput) -> WatchResult:
        """The watch: load what the watched folder and/or URLs hold, when it is a new version."""
        settings = self._settings
        checked: list[str] = []
        loads: list[LoadResult] = []
        task_queue = activity.info().task_queue
        if settings.sanctions_watch_dir is not None:
            folder = Path(settings.sanctions_watch_dir)
            checked.append(str(folder))
            result = await heartbeating(
                load_and_rescreen(
                    settings=settings,
                    sessions=self._sessions,
                    temporal=self.temporal,
                    given=source_files(folder),
                    source=str(folder),
                    loaded_by=inp.requested_by,
                    task_queue=task_queue,
                    only_if_new=True,
                ),
                f"checking {folder}",
            )
            if result is not None:
                loads.append(result)
        urls = [u.strip() for u in (settings.sanctions_watch_url or "").split(",") if u.strip()]
        if urls:
            checked.extend(urls)
            with tempfile.TemporaryDirectory(prefix="sanctions-") as tmp:
                given: dict[ListKind, Path] = {}
                for url in urls:
                    path = await heartbeating(_download(url, Path(tmp)), f"downloading {url}")
                    given[sniff_kind(path)] = path
                result = await heartbeating(
                    load_and_rescreen(
                        settings=settings,
                        sessions=self._sessions,
                        temporal=self.temporal,
                        given=given,
                        source=", ".join(urls),
                        loaded_by=inp.requested_by,
                        task_queue=task_queue,
                        only_if_new=True,
                    ),
                    "checking the downloaded lists",
                )
                if result is not None:
                    loads.append(result)
        if not checked:
            return WatchResult(checked="", detail="no SANCTIONS_WATCH_DIR or SANCTIONS_WATCH_URL")
        return WatchResult(
            checked=", ".join(checked),
            load=loads[-1] if loads else None,
            detail="; ".join(r.detail for r in loads) or "no new version",
        )

    # -- the alert case's automations (``activities.automations`` dispatches here)
    async def record_alert_outcome(self, inp: AutomationInput) -> AutomationResult:
        """Mark the alert cleared (approved) or escalated (rejected), with who and why."""
        alert_id = str(inp.args.get("alert_id") or "")
        outcome = inp.args.get("outcome")
        status = {"approved": "cleared", "rejected": "escalated"}.get(str(outcome))
        if not alert_id or status is None:
            raise _invalid(
                f"record_alert_outcome needs alert_id and an outcome (approved/rejected), "
                f"got {alert_id!r} / {outcome!r}"
            )
        by = str(inp.args.get("by") or "") or None
        note = str(inp.args.get("note") or "") or None
        code = str(inp.args.get("reason_code") or "") or None
        async with self._sessions.begin() as session:
            alert = await db.decide_alert(
                session, alert_id, status=status, by=by, reason_code=code, reason=note, at=inp.at
            )
            if alert is None:
                raise _invalid(f"no sanctions alert {alert_id}")
            await db.case_event(
                session,
                case_ref=alert.client_case_ref,
                key=f"sanctions_alert_{status}:{alert_id}",
                kind=f"sanctions_alert_{status}",
                actor=by or MONITORING_ACTOR,
                detail={
                    "alert_ref": alert_id,
                    "entry_id": alert.entry_id,
                    "matched_name": alert.matched_name,
                    "reason_code": code,
                    "note": note,
                },
                at=inp.at,
            )
        return AutomationResult(
            outputs={"alert_id": alert_id, "status": status, "decided_by": by},
            summary=f"alert {alert_id} {status}" + (f" by {by}" if by else ""),
        )

    async def escalate_client_case(self, inp: AutomationInput) -> AutomationResult:
        """Put the client's case on hold (the case's own ``pause``, naming the alert); a case
        already resolved or closed gets the escalation on its record instead (and the alert
        case tells the compliance lead)."""
        alert_id = str(inp.args.get("alert_id") or "")
        client_ref = str(inp.args.get("client_case_ref") or "")
        if not alert_id or not client_ref:
            raise _invalid("escalate_client_case needs alert_id and client_case_ref")
        by = str(inp.args.get("by") or "") or "a compliance reviewer"
        note = str(inp.args.get("note") or "")
        code = str(inp.args.get("reason_code") or "")
        reason = f"Sanctions alert {alert_id} escalated by {by}" + (f" ({code})" if code else "")
        reason = (reason + (f": {note}" if note else ""))[:2000]
        async with self._sessions() as session:
            row = await session.get(Case, client_ref)
        if row is None:
            raise _invalid(f"no client case {client_ref}")
        paused = await heartbeating(self._pause(row, alert_id, reason), f"pausing {client_ref}")
        async with self._sessions.begin() as session:
            await db.case_event(
                session,
                case_ref=client_ref,
                key=f"sanctions_alert_escalation:{alert_id}",
                kind="sanctions_alert_escalation",
                actor=MONITORING_ACTOR,
                detail={
                    "alert_ref": alert_id,
                    "by": by,
                    "reason_code": code or None,
                    "note": note or None,
                    "action": "paused" if paused else "recorded",
                    "case_status": row.status,
                },
                at=inp.at,
            )
        return AutomationResult(
            outputs={
                "client_case_ref": client_ref,
                "client_case_paused": paused,
                "client_case_status": "paused" if paused else row.status,
            },
            summary=(
                f"client case {client_ref} paused"
                if paused
                else f"client case {client_ref} is {row.status}; escalation recorded on it"
            ),
        )

    async def _pause(self, row: Case, alert_id: str, reason: str) -> bool:
        """True when the client's case is (now) paused for this alert."""
        handle = self.temporal.get_workflow_handle(row.workflow_id)
        if row.engine != ENGINE:  # the frozen pre-engine workflow pauses on a signal
            if row.status not in OPEN_STATUSES:
                return False
            try:
                await handle.signal("pause", PauseRequest(actor=MONITORING_ACTOR, reason=reason))
            except RPCError:
                return False
            return True
        if row.status in OPEN_STATUSES:
            try:
                await asyncio.wait_for(
                    handle.execute_update(
                        "pause",
                        PauseCase(actor=MONITORING_ACTOR, role="admin", reason=reason),
                        result_type=CommandResult,
                    ),
                    timeout=UPDATE_TIMEOUT,
                )
                return True
            except WorkflowUpdateFailedError:  # refused: already paused, or resolved meanwhile
                return await _paused_for(handle, alert_id)
            except RPCError:
                return False  # the workflow is gone (closed): record only
        if row.status != "paused":
            return False
        return await _paused_for(handle, alert_id)


async def _paused_for(handle: WorkflowHandle[Any, Any], alert_id: str) -> bool:
    """Whether the case is paused for this alert: a retry after our own pause went through
    (True), or someone else paused it (False: the escalation is recorded on it instead)."""
    try:
        state = await handle.query("state", result_type=CaseSnapshot)
    except RPCError:
        return False
    return state.status == "paused" and any(alert_id in p.reason for p in state.pauses)


__all__ = [
    "MonitoringActivities",
    "configured_files",
    "load_and_rescreen",
]


async def _download(url: str, folder: Path) -> Path:
    """Fetch one list file (bounded), named after the URL's last path segment."""
    import httpx

    name = Path(urlsplit(url).path).name or "list.csv"
    path = folder / name
    size = 0
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=True) as http,
        http.stream("GET", url) as response,
    ):
        response.raise_for_status()
        with path.open("wb") as handle:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > DOWNLOAD_LIMIT:
                    raise ApplicationError(
                        f"{url}: larger than {DOWNLOAD_LIMIT} bytes", type="ListTooLarge"
                    )
                handle.write(chunk)
    return path
