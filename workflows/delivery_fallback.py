"""DeliveryFallback: one message a provider gave up on after accepting it (an email that
bounced or was dropped, an SMS that failed or was undelivered) goes out on the recipient's
next channel.

The API starts it from the provider's event with the workflow id
``delivery-fallback-<outbox key>`` (``schemas.contracts.fallback_workflow_id``), so a
second event for the same message (SendGrid and Twilio both repeat themselves) starts
nothing; the activity is idempotent on the next channel's outbox key as well.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.contracts import DELIVER_FALLBACK, DELIVERY_FALLBACK_WORKFLOW
    from schemas.notifications import FallbackInput, FallbackResult


@workflow.defn(name=DELIVERY_FALLBACK_WORKFLOW)
class DeliveryFallbackWorkflow:
    @workflow.run
    async def run(self, inp: FallbackInput) -> FallbackResult:
        return await workflow.execute_activity(
            DELIVER_FALLBACK,
            inp,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=5),
                maximum_interval=timedelta(minutes=10),
                maximum_attempts=20,
                non_retryable_error_types=["InvalidNotification", "InvalidTemplateContext"],
            ),
            result_type=FallbackResult,
        )
