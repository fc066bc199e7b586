"""Outbound events to downstream systems (CRM, billing, ticketing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class WebhookEvent(BaseModel):
    event_id: str = Field(description="Unique and stable across retries: receivers dedupe on it")
    event_type: str = Field(description="account.provisioned | account.closed | case.completed …")
    case_ref: str
    occurred_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookDeliveryResult(BaseModel):
    event_id: str
    status: str = Field(description="delivered | dead_letter | skipped (no endpoint configured)")
    attempts: int
    last_status_code: int | None = None
