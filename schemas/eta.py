"""The ETA activities' contract: names, input and output. Pure pydantic, so workflows may
import it (the model itself, ``analytics.eta``, is never imported by workflow code).

``estimate_eta``: when will this new case be done? p10/p50/p90 completion times, learned from
history (``basis="model"``), or, for a case type with too little history (or no model yet),
the sum of the SLA budgets of the route the caller passes (``basis="budgets"``).

``refit_eta``: learn again from the history table and store a new version when the history
changed (for a Temporal Schedule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ESTIMATE_ETA = "estimate_eta"
REFIT_ETA = "refit_eta"


class StageBudget(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    sla_hours: float | None = Field(default=None, ge=0, description="None: the stage has no SLA")


class EtaFacts(BaseModel):
    """What is known when the case opens (the creation columns of the history format)."""

    model_config = ConfigDict(frozen=True)

    client_type: str
    tier: str = "standard"
    country: str = Field(min_length=2, max_length=2)
    service_requirements: list[str] = Field(default_factory=list)
    documents_submitted_at_creation: bool = False
    created_at: datetime


class EstimateEtaInput(BaseModel):
    case_ref: str
    case_type: str
    facts: EtaFacts
    route: list[StageBudget] = Field(
        default_factory=list,
        description="The stages the case is expected to go through with their SLAs: the "
        "fallback estimate is the sum of these budgets",
    )


class EtaEstimate(BaseModel):
    case_ref: str
    p10: datetime = Field(description="Done by then in about 1 case of 10")
    p50: datetime = Field(description="The estimate: as likely earlier as later")
    p90: datetime = Field(description="Done by then in about 9 cases of 10")
    basis: Literal["model", "budgets"] = Field(
        description="model: learned from history; budgets: the sum of the route's stage SLAs "
        "(too little history of this case type, or no model yet)"
    )
    model_version: str | None = Field(
        default=None, description="The model the estimate came from (None for budgets)"
    )


class RefitEtaInput(BaseModel):
    case_type: str | None = Field(default=None, description="None: learn from every case type")
    history_days: int | None = Field(
        default=None, ge=1, description="Only cases created in the last N days (None: all)"
    )
    holdout: float = Field(default=0.2, ge=0, lt=1)


class RefitEtaResult(BaseModel):
    saved: bool = Field(description="False: the history had not changed, or too little of it")
    version: str | None = None
    cases: int = 0
    reason: str = ""
    holdout_within_4h: float | None = None
    holdout_mae_hours: float | None = None


# ----------------------------------------------------------------------------- breach risk
PREDICT_BREACH = "predict_breach"


class PredictBreachInput(BaseModel):
    """An open stage at its predictive check: will it breach its SLA?"""

    case_ref: str
    case_type: str
    facts: EtaFacts
    stage: str
    entered_at: datetime
    at: datetime
    budget_hours: float = Field(gt=0)
    visit: int = Field(default=1, ge=1)
    tasks_done_share: float | None = Field(default=None, ge=0, le=1)


class BreachRisk(BaseModel):
    probability: float | None = Field(
        default=None, ge=0, le=1, description="None: no breach model has been fitted yet"
    )
    model_version: str | None = None
