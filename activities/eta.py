"""ETA activities: ``estimate_eta`` (when will this new case be done?) and ``refit_eta`` (learn
again from the history table; for a Temporal Schedule). Contract: ``schemas.eta``.

The worker keeps the newest stored model (``learned_models``, kind ``eta``) in memory: loaded
on first use, and reloaded when a newer version has been stored, which it asks about at most
every ``check_every`` (5 minutes). With no model, or for a case type the model has too little
history of, the estimate is the sum of the route's SLA budgets (``basis="budgets"``).

numpy and LightGBM load with the first call, not when the worker imports this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.model_cache import LatestModel
from schemas.eta import (
    ESTIMATE_ETA,
    REFIT_ETA,
    EstimateEtaInput,
    EtaEstimate,
    EtaFacts,
    RefitEtaInput,
    RefitEtaResult,
)
from schemas.history import CaseFacts
from store import history, learned_models
from store.db import SessionFactory

if TYPE_CHECKING:
    from analytics.casetypes import CaseTypes
    from analytics.eta import EtaModel

KIND = "eta"


def case_facts(inp: EstimateEtaInput) -> CaseFacts:
    return facts_of(inp.case_ref, inp.case_type, inp.facts)


def facts_of(case_ref: str, case_type: str, f: EtaFacts) -> CaseFacts:
    """The history record's creation facts of a case, as the models learned them."""
    return CaseFacts(
        case_ref=case_ref,
        case_type=case_type,
        client_type=f.client_type,
        tier=f.tier,
        country=f.country.upper(),
        service_requirements=tuple(f.service_requirements),
        documents_submitted_at_creation=f.documents_submitted_at_creation,
        created_at=f.created_at if f.created_at.tzinfo else f.created_at.replace(tzinfo=UTC),
    )


class EtaActivities:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        case_types: CaseTypes | None = None,
        check_every: timedelta = timedelta(minutes=5),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._case_types = case_types
        self._latest: LatestModel[EtaModel] = LatestModel(
            sessions, KIND, _load, check_every=check_every, clock=clock
        )

    async def model(self) -> EtaModel | None:
        """The newest stored model (``activities.model_cache``)."""
        return await self._latest.get()

    @activity.defn(name=ESTIMATE_ETA)
    async def estimate_eta(self, inp: EstimateEtaInput) -> EtaEstimate:
        from analytics.eta import predict

        model = await self.model()
        facts = case_facts(inp)
        route_hours = sum(b.sla_hours for b in inp.route if b.sla_hours is not None)

        def budgets(f: CaseFacts) -> float | None:
            if inp.route:
                return route_hours
            return self._case_types.budget_hours(f) if self._case_types is not None else None

        try:
            estimate = predict(model, [facts], budgets)[0]
        except ValueError as e:
            raise ApplicationError(str(e), type="NoEstimate", non_retryable=True) from e
        p10, p50, p90 = estimate.times(facts.created_at)
        learned = model is not None and estimate.basis == "model"
        return EtaEstimate(
            case_ref=inp.case_ref,
            p10=p10,
            p50=p50,
            p90=p90,
            basis=estimate.basis,
            model_version=model.version if learned and model is not None else None,
        )

    @activity.defn(name=REFIT_ETA)
    async def refit_eta(self, inp: RefitEtaInput) -> RefitEtaResult:
        """Learn from the history table; store a new version unless the history is the one
        the newest model learned from."""
        from analytics.common import data_hash
        from analytics.eta import fit

        since = datetime.now(UTC) - timedelta(days=inp.history_days) if inp.history_days else None
        async with self._sessions() as session:
            intervals = await history.load(session, case_type=inp.case_type, since=since)
            newest = await learned_models.latest(session, KIND)
        if not intervals:
            return RefitEtaResult(saved=False, reason="no history")
        digest = await asyncio.to_thread(data_hash, intervals)
        if newest is not None and newest.summary.get("data_hash") == digest:
            return RefitEtaResult(
                saved=False, version=newest.version, cases=newest.cases, reason="history unchanged"
            )
        try:
            model = await _with_heartbeats(asyncio.to_thread(fit, intervals, holdout=inp.holdout))
        except ValueError as e:
            return RefitEtaResult(saved=False, reason=str(e))
        async with self._sessions.begin() as session:
            saved = await learned_models.save(session, model.to_record())
        scores = model.summary.get("holdout", {}).get("model", {})
        return RefitEtaResult(
            saved=saved,
            version=model.version,
            cases=model.cases,
            reason="" if saved else "this version was stored already",
            holdout_within_4h=scores.get("within_4h"),
            holdout_mae_hours=scores.get("mae_hours"),
        )


def _load(blob: bytes) -> EtaModel:
    from analytics.eta import EtaModel

    return EtaModel.from_blob(blob)


async def _with_heartbeats(work: Any, every: float = 10.0) -> Any:
    """Await ``work`` (a thread doing the fit), heartbeating meanwhile when in an activity."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()
        if activity.in_activity():
            activity.heartbeat("fitting")
