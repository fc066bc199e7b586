"""Breach prediction for an open stage, as an activity: the model (``analytics.risk``, numpy
and LightGBM) never runs in workflow code. The case asks at its predictive check and raises
at-risk when the probability reaches its case type's ``breach_probability``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from temporalio import activity

from activities.eta import facts_of
from activities.model_cache import LatestModel
from schemas.eta import PREDICT_BREACH, BreachRisk, PredictBreachInput
from store.db import SessionFactory
from store.models import Case
from store.work import OPEN_CASE_STATUSES as OPEN_STATUSES

if TYPE_CHECKING:
    from analytics.risk import BreachModel

KIND = "breach"


class BreachActivities:
    def __init__(
        self, sessions: SessionFactory, *, check_every: timedelta = timedelta(minutes=5)
    ) -> None:
        self._sessions = sessions
        self._latest: LatestModel[BreachModel] = LatestModel(
            sessions, KIND, _load, check_every=check_every
        )

    @activity.defn(name=PREDICT_BREACH)
    async def predict_breach(self, inp: PredictBreachInput) -> BreachRisk:
        from analytics.risk import OpenStage

        model = await self._latest.get()
        if model is None:
            return BreachRisk()
        async with self._sessions() as session:  # how busy that stage is now
            load = await session.scalar(
                select(func.count())
                .select_from(Case)
                .where(
                    Case.case_type == inp.case_type,
                    Case.stage == inp.stage,
                    Case.status.in_(OPEN_STATUSES),
                )
            )
        stage = OpenStage(
            facts=facts_of(inp.case_ref, inp.case_type, inp.facts),
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


def _load(blob: bytes) -> BreachModel:
    from analytics.risk import BreachModel

    return BreachModel.from_blob(blob)
