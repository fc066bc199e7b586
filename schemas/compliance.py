"""Sanctions/PEP screening and risk scoring, as the workflow and the audit trail see them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.client import ClientProfile


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ScreenClientInput(BaseModel):
    case_ref: str
    client: ClientProfile
    attempt_key: str = Field(description="Idempotency: one screening row per (case, key)")


class ScreeningOutcome(BaseModel):
    """Small on purpose: the full hit list lives in Postgres (``screenings``), not in history."""

    screening_id: str
    decision: str = Field(description="clear | potential_match")
    score: float
    matched_name: str | None = None
    list_entry_id: str | None = None
    explanation: str | None = None
    list_version: str
    risk_level: RiskLevel
    risk_score: int = Field(ge=0, le=100)
    risk_factors: list[str] = Field(default_factory=list)
