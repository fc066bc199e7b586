"""Messages and webhooks a case sends, in order, without holding the case up.

Queued items go out in batches, one ``engine_sync_case`` activity per batch, on a background
lane: a slow provider never stops a case from moving on, and a client's messages keep their
order. When a batch is about to leave anyway, the pending read-model projection rides along
(written first by the activity), which saves a billable action per blocking point. Every
message carries its outbox key (case, milestone, occurrence, channel), so a retried batch never
sends twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

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

SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["InvalidTemplateContext"],
)


class Outbox:
    def __init__(self, case_ref: str) -> None:
        self._case_ref = case_ref
        self._messages: list[NotifyInput] = []
        self._webhooks: list[WebhookEvent] = []
        self._riding: EngineProjection | None = None
        self._busy = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.failures: list[str] = []
        # Nothing leaves before the case's first read-model write: messages and webhooks hang
        # off the case row, which that write creates when nobody inserted it first.
        self.held = True

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing in flight: a run may end (continue as new) here."""
        return not (self._messages or self._webhooks or self._busy or self._riding)

    def message(self, item: NotifyInput) -> None:
        self._messages.append(item)
        self._start()

    def webhook(self, item: WebhookEvent) -> None:
        self._webhooks.append(item)
        self._start()

    def carry(self, projection: EngineProjection) -> bool:
        """Take the projection along with the next batch, if messages are queued: it leaves
        now when the lane is idle, else right after the batch in flight. With nothing queued
        the caller writes it at once (a local activity), so the read model never waits for
        a message that may never come."""
        if self.held or not (self._messages or self._webhooks):
            return False
        if projection.seed is not None:  # the first write creates the row others depend on
            return False
        self._riding = projection if self._riding is None else merged(self._riding, projection)
        return True

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await workflow.wait_condition(
                lambda: (bool(self._messages or self._webhooks) and not self.held) or self._closing
            )
            if not (self._messages or self._webhooks):
                return
            batch = SyncCaseInput(
                case_ref=self._case_ref,
                projection=self._riding,
                messages=self._messages,
                webhooks=self._webhooks,
            )
            self._messages, self._webhooks, self._riding = [], [], None
            self._busy = True
            try:
                result = await workflow.execute_activity(
                    SYNC_CASE,
                    batch,
                    start_to_close_timeout=timedelta(minutes=2),
                    heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=SEND_RETRY,
                    result_type=SyncCaseResult,
                )
                self.failures.extend(result.failed)
            except ActivityError as e:  # a failed batch is recorded, never fails the case
                workflow.logger.warning("outbox batch failed: %s", e.cause or e)
                self.failures.append(str(e.cause or e)[:200])
                if batch.projection is not None:  # the read model must not lose it
                    await workflow.execute_local_activity(
                        PROJECT_CASE,
                        batch.projection,
                        start_to_close_timeout=timedelta(seconds=30),
                        retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                        result_type=ProjectResult,
                    )
            finally:
                self._busy = False

    async def drain(self) -> None:
        """Send everything queued; call once, when the case ends."""
        self._closing = True
        if self._task is not None:
            await self._task


def merged(older: EngineProjection, newer: EngineProjection) -> EngineProjection:
    """Two projections not yet written, as one: the newer one's rows win, events add up."""
    return newer.model_copy(
        update={
            "seed": older.seed or newer.seed,
            "visits": list({v.seq: v for v in [*older.visits, *newer.visits]}.values()),
            "pauses": list({p.seq: p for p in [*older.pauses, *newer.pauses]}.values()),
            "elements": list({e.key: e for e in [*older.elements, *newer.elements]}.values()),
            "events": [*older.events, *newer.events],
        }
    )
