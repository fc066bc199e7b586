"""Breach prediction for an open stage, as an activity: the model (``analytics.risk``, numpy
and LightGBM) never runs in workflow code. The case asks at its predictive check and raises
at-risk when the probability reaches its case type's ``breach_probability``."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from temporalio import activity

from activities.eta import case_facts
from schemas.eta import PREDICT_BREACH, BreachRisk, EstimateEtaInput, PredictBreachInput
from store import learned_models
from store.db import SessionFactory
from store.models import Case

log = logging.getLogger(__name__)
KIND = "breach"


class BreachActivities:
    def __init__(
        self, sessions: SessionFactory, *, check_every: timedelta = timedelta(minutes=5)
    ) -> None:
        self._sessions = sessions
        self._check_every = check_every.total_seconds()
        self._model: Any = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def model(self) -> Any:
        """The newest stored breach model (cached; newer versions picked up within minutes)."""
        from analytics.risk import BreachModel

        async with self._lock:
            now = time.monotonic()
            if self._checked_at is not None and now - self._checked_at < self._check_every:
                return self._model
            async with self._sessions() as session:
                version = await learned_models.latest_version(session, KIND)
                if version is not None and (self._model is None or self._model.version != version):
                    stored = await learned_models.get(session, KIND, version)
                    if stored is not None:
                        self._model = await asyncio.to_thread(BreachModel.from_blob, stored.blob)
                        log.info("breach model %s loaded", version)
            self._checked_at = now
            return self._model

    @activity.defn(name=PREDICT_BREACH)
    async def predict_breach(self, inp: PredictBreachInput) -> BreachRisk:
        from analytics.risk import OpenStage

        model = await self.model()
        if model is None:
            return BreachRisk()
        async with self._sessions() as session:  # how busy that stage is now
            load = await session.scalar(
                select(func.count())
                .select_from(Case)
                .where(
                    Case.case_type == inp.case_type,
                    Case.stage == inp.stage,
                    Case.status.in_(("open", "waiting_on_client", "paused")),
                )
            )
        facts = case_facts(
            EstimateEtaInput(case_ref=inp.case_ref, case_type=inp.case_type, facts=inp.facts)
        )
        stage = OpenStage(
            facts=facts,
            stage=inp.stage,
            entered_at=inp.entered_at,
            at=inp.at,
            budget_hours=inp.budget_hours,
            visit=inp.visit,
            stage_load=float(load or 0),
            tasks_done_share=inp.tasks_done_share,
        )
        (p,) = await asyncio.to_thread(model.predict, [stage])
        return BreachRisk(probability=float(p), model_version=model.version)
