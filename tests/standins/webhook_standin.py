"""Stand-in for a downstream system receiving our outbound webhooks.

A receiver the way docs/webhooks.md tells integrators to write one: it verifies the Standard
Webhooks signature (``webhook-id``/``-timestamp``/``-signature``, with the reference library),
answers 2xx, and processes each ``webhook-id`` once: a redelivery of an id it has already
processed is acknowledged and counted, not processed again. What it processed is what a
downstream system would have acted on, so two processed deliveries for the same
(case, event type) are a duplicate the receiver could not catch.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.standins._server import RecordedRequest, Reply, StandinServer, json_reply

DEFAULT_PATH = "/hooks/onboarding"


@dataclass(frozen=True)
class ProcessedWebhook:
    """One delivery the receiver acted on (the first under its webhook-id)."""

    webhook_id: str
    event_type: str
    case_ref: str
    payload: dict[str, Any]


class WebhookReceiverStandin(StandinServer):
    """Verifies, dedupes on webhook-id and records; ``fail_next``/``set_fault_profile``
    make it answer errors or stall like a struggling receiver."""

    name = "webhook"

    def __init__(self, secret: str, path: str = DEFAULT_PATH) -> None:
        super().__init__()
        self._verifier = Webhook(secret)
        self.path = path
        self.processed: dict[str, ProcessedWebhook] = {}
        self.redelivered: Counter[str] = Counter()  # webhook-id -> acknowledged again
        self.rejected_signatures = 0
        self._seen = threading.Lock()

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def reset(self) -> None:
        super().reset()
        with self._seen:
            self.processed.clear()
            self.redelivered.clear()
            self.rejected_signatures = 0

    def injected_error(self, status: int, message: str | None) -> Reply:
        return json_reply(status, {"error": message or f"receiver error {status}"})

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path != self.path:
            return json_reply(404, {"error": "not found"})
        if request.method != "POST":
            return json_reply(405, {"error": "method not allowed"})
        try:
            payload = self._verifier.verify(request.body, request.headers)
        except WebhookVerificationError:
            with self._seen:
                self.rejected_signatures += 1
            return json_reply(401, {"error": "signature verification failed"})
        if not isinstance(payload, dict):
            return json_reply(400, {"error": "expected a JSON object"})
        webhook_id = request.headers["webhook-id"]
        with self._seen:
            if webhook_id in self.processed:
                self.redelivered[webhook_id] += 1
                return json_reply(200, {"status": "already processed"})
            self.processed[webhook_id] = ProcessedWebhook(
                webhook_id=webhook_id,
                event_type=str(payload.get("event_type", "")),
                case_ref=str(payload.get("case_ref", "")),
                payload=payload,
            )
        return json_reply(200, {"status": "processed"})

    def duplicates(self) -> dict[tuple[str, str], list[str]]:
        """(case_ref, event_type) processed under more than one webhook-id -> those ids."""
        by_event: dict[tuple[str, str], list[str]] = {}
        with self._seen:
            for item in self.processed.values():
                by_event.setdefault((item.case_ref, item.event_type), []).append(item.webhook_id)
        return {key: ids for key, ids in by_event.items() if len(ids) > 1}


@contextmanager
def running_webhook_standin(
    secret: str, path: str = DEFAULT_PATH
) -> Iterator[WebhookReceiverStandin]:
    """``with running_webhook_standin(secret) as hooks:`` then set WEBHOOK_URL to ``hooks.url``."""
    standin = WebhookReceiverStandin(secret, path)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
