"""Sanctions monitoring's contracts: workflow and activity names, inputs and results. Pure
pydantic, so workflows may import it (the work is in ``activities.monitoring``).

``RescreenClients`` screens every client again against one list version, in batches
(``rescreen_batch``), and opens a ``sanctions_alert`` case per new hit; ``SanctionsListWatch``
(the ``sanctions-list-watch`` schedule) looks for a new list and, when there is one, installs
it and starts ``RescreenClients``. See docs/sanctions-monitoring.md.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field

RESCREEN_WORKFLOW = "RescreenClients"
WATCH_WORKFLOW = "SanctionsListWatch"
WATCH_SCHEDULE_ID = "sanctions-list-watch"

RESCREEN_BATCH = "rescreen_batch"
FINISH_RESCREEN = "finish_rescreen"
CHECK_SANCTIONS_SOURCE = "check_sanctions_source"

ALERT_CASE_TYPE = "sanctions_alert"
RECORD_ALERT_OUTCOME = "record_alert_outcome"  # automations (schemas.contracts.AUTOMATIONS)
ESCALATE_CLIENT_CASE = "escalate_client_case"
MONITORING_ACTOR = "sanctions-monitoring"

AlertStatus = Literal["open", "cleared", "escalated"]


def rescreen_workflow_id(version: str) -> str:
    """One re-screen per list version, ever: loading a version again starts nothing."""
    return f"rescreen-{version}"


def alert_id_for(client_case_ref: str, entry_id: str, entry_hash: str) -> str:
    """The alert of one client against one version of one list entry. Deterministic, so a
    retried batch finds the alert it already wrote, and its case (whose reference it is)."""
    key = f"{client_case_ref}\x1f{entry_id}\x1f{entry_hash}".encode()
    return "SA-" + hashlib.sha256(key).hexdigest()[:16].upper()


class RescreenTotals(BaseModel):
    """What a re-screen did so far (carried across continue-as-new)."""

    batches: int = 0
    clients: int = Field(default=0, description="Clients screened")
    unscreenable: int = Field(default=0, description="Clients with no usable name, skipped")
    hits: int = Field(default=0, description="Hits at or above the threshold")
    new_alerts: int = Field(default=0, description="Hits never alerted before")
    cases_opened: int = Field(default=0, description="Alert cases started")
    list_versions: list[str] = Field(
        default_factory=list, description="The versions the batches screened against"
    )

    def plus(self, batch: RescreenBatchResult) -> RescreenTotals:
        versions = list(self.list_versions)
        if batch.list_version and batch.list_version not in versions:
            versions.append(batch.list_version)
        return RescreenTotals(
            batches=self.batches + 1,
            clients=self.clients + batch.clients,
            unscreenable=self.unscreenable + batch.unscreenable,
            hits=self.hits + batch.hits,
            new_alerts=self.new_alerts + batch.new_alerts,
            cases_opened=self.cases_opened + batch.cases_opened,
            list_versions=versions,
        )


class RescreenInput(BaseModel):
    version: str = Field(description="The list version this re-screen was started for")
    after_ref: str | None = Field(default=None, description="Resume after this client case")
    batch_size: int = Field(default=200, ge=1, le=5000)
    batches_per_run: int = Field(
        default=50, ge=1, le=1000, description="Continue as new after this many batches"
    )
    heartbeat_seconds: int = Field(default=60, ge=2, le=3600)
    totals: RescreenTotals = Field(default_factory=RescreenTotals)


class RescreenBatchInput(BaseModel):
    version: str
    after_ref: str | None = None
    limit: int = Field(default=200, ge=1, le=5000)
    workflow_id: str = ""


class RescreenBatchResult(BaseModel):
    next_after_ref: str | None = Field(description="The last client case of this batch")
    done: bool = Field(description="No client after this batch")
    list_version: str = Field(description="The version actually screened against")
    clients: int = 0
    unscreenable: int = 0
    hits: int = 0
    new_alerts: int = 0
    cases_opened: int = 0


class FinishRescreenInput(BaseModel):
    version: str
    totals: RescreenTotals
    workflow_id: str = ""


class FinishRescreenResult(BaseModel):
    cases_opened: int = Field(default=0, description="Alert cases a crash had left unopened")


class RescreenProgress(BaseModel):
    """The ``progress`` query of a running re-screen."""

    version: str
    after_ref: str | None
    totals: RescreenTotals
    done: bool = False


class WatchInput(BaseModel):
    requested_by: str = Field(default="schedule", max_length=120)


class LoadResult(BaseModel):
    """What loading a list did (``onboarding sanctions load``, or the watch schedule)."""

    version: str
    new_version: bool = Field(description="The version was not recorded before")
    installed: list[str] = Field(default_factory=list, description="Files written")
    entry_count: int = 0
    rescreen_workflow_id: str
    rescreen_started: bool = Field(description="False: that version's re-screen already ran")
    detail: str = ""


class WatchResult(BaseModel):
    checked: str = Field(description="What was looked at (folder or URL)")
    load: LoadResult | None = Field(default=None, description="None: nothing new there")
    detail: str = ""


__all__ = [
    "ALERT_CASE_TYPE",
    "CHECK_SANCTIONS_SOURCE",
    "ESCALATE_CLIENT_CASE",
    "FINISH_RESCREEN",
    "MONITORING_ACTOR",
    "RECORD_ALERT_OUTCOME",
    "RESCREEN_BATCH",
    "RESCREEN_WORKFLOW",
    "WATCH_SCHEDULE_ID",
    "WATCH_WORKFLOW",
    "FinishRescreenInput",
    "FinishRescreenResult",
    "LoadResult",
    "RescreenBatchInput",
    "RescreenBatchResult",
    "RescreenInput",
    "RescreenProgress",
    "RescreenTotals",
    "WatchInput",
    "WatchResult",
    "alert_id_for",
    "rescreen_workflow_id",
]
