"""Outbound webhook delivery with a delivery log, Temporal retries and a dead letter."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from integrations.delivery import DeliveryError, PermanentDeliveryError
from integrations.webhooks import WebhookSender
from schemas.webhooks import WebhookDeliveryResult, WebhookEvent
from store.db import SessionFactory
from store.models import WebhookDeliveryRow

PENDING = "pending"
DELIVERED = "delivered"
DEAD_LETTER = "dead_letter"
SKIPPED = "skipped"
FINAL_STATUSES = (DELIVERED, DEAD_LETTER)


def _result(row: WebhookDeliveryRow) -> WebhookDeliveryResult:
    return WebhookDeliveryResult(
        event_id=row.event_id,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
    )


class WebhookActivities:
    """``deliver_webhook``, bound to the delivery log and the configured sender.

    Retry and backoff belong to Temporal: a failed send below ``max_attempts`` raises so the
    activity's RetryPolicy (with ``maximum_attempts == max_attempts``) schedules the next try.
    The last attempt records a dead letter and returns normally, so the case carries on.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        sender: WebhookSender | None,
        *,
        max_attempts: int,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._sessions = session_factory
        self._sender = sender
        self._max_attempts = max_attempts

    async def _open_row(self, event: WebhookEvent, url: str) -> WebhookDeliveryRow:
        """The event's log row, created as pending on first sight (keyed on event_id)."""
        async with self._sessions.begin() as session:
            await session.execute(
                insert(WebhookDeliveryRow)
                .values(
                    event_id=event.event_id,
                    case_ref=event.case_ref,
                    event_type=event.event_type,
                    url=url,
                    payload=event.model_dump(mode="json"),
                    status=PENDING,
                    attempts=0,
                    created_at=dt.datetime.now(dt.UTC),
                )
                .on_conflict_do_nothing(index_elements=["event_id"])
            )
            row = await session.scalar(
                select(WebhookDeliveryRow).where(WebhookDeliveryRow.event_id == event.event_id)
            )
            if row is None:  # pragma: no cover - inserted above or by an earlier attempt
                raise RuntimeError(f"webhook delivery row missing for {event.event_id}")
            return row

    async def _record(self, event_id: str, **values: object) -> WebhookDeliveryRow:
        """Count one send attempt and store its outcome."""
        async with self._sessions.begin() as session:
            row = await session.scalar(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.event_id == event_id)
                .values(attempts=WebhookDeliveryRow.attempts + 1, **values)
                .returning(WebhookDeliveryRow)
            )
            if row is None:  # pragma: no cover - _open_row created it
                raise RuntimeError(f"webhook delivery row missing for {event_id}")
            return row

    @activity.defn(name="deliver_webhook")
    async def deliver(self, event: WebhookEvent) -> WebhookDeliveryResult:
        """Deliver ``event`` at most once successfully, however often the activity runs.

        An event already ``delivered`` or ``dead_letter`` in the log is not sent again. With no
        endpoint configured the result is ``skipped`` and nothing is logged to the table.
        """
        if self._sender is None:
            return WebhookDeliveryResult(event_id=event.event_id, status=SKIPPED, attempts=0)

        row = await self._open_row(event, self._sender.url)
        if row.status in FINAL_STATUSES:
            activity.logger.info(
                "webhook already %s event=%s, not sending again", row.status, event.event_id
            )
            return _result(row)

        try:
            status_code = await self._sender.send(event)
        except DeliveryError as e:
            return await self._failed(event, e)

        row = await self._record(
            event.event_id,
            status=DELIVERED,
            delivered_at=dt.datetime.now(dt.UTC),
            last_status_code=status_code,
            last_error=None,
            url=self._sender.url,
        )
        return _result(row)

    def _budget(self) -> int:
        """Attempts allowed: ``max_attempts``, or fewer if the caller's RetryPolicy says so.

        Dead-lettering on the last attempt Temporal will actually make keeps a smaller policy
        from leaving the row ``pending`` forever.
        """
        policy = activity.info().retry_policy
        if policy is not None and policy.maximum_attempts > 0:
            return min(self._max_attempts, policy.maximum_attempts)
        return self._max_attempts

    async def _failed(self, event: WebhookEvent, error: DeliveryError) -> WebhookDeliveryResult:
        """Record the failure; raise for a Temporal retry, or dead-letter on the last attempt.

        Permanent (4xx) failures also use the whole budget: receivers get fixed, and the
        backoff gives them time. The status code is kept for ops either way.
        """
        attempt = activity.info().attempt
        budget = self._budget()
        final = attempt >= budget
        row = await self._record(
            event.event_id,
            last_status_code=error.status_code,
            last_error=str(error),
            **({"status": DEAD_LETTER} if final else {}),
        )
        kind = "permanent" if isinstance(error, PermanentDeliveryError) else "retryable"
        if final:
            activity.logger.error(
                "webhook dead-lettered event=%s type=%s case=%s after %d attempts: %s",
                event.event_id,
                event.event_type,
                event.case_ref,
                row.attempts,
                error,
            )
            return _result(row)
        activity.logger.warning(
            "webhook attempt %d/%d failed (%s) event=%s: %s",
            attempt,
            budget,
            kind,
            event.event_id,
            error,
        )
        raise ApplicationError(
            f"webhook delivery failed ({kind}): {error}",
            {
                "event_id": event.event_id,
                "status_code": error.status_code,
                "attempts": row.attempts,
            },
            type="WebhookDeliveryFailed",
        )
