"""Signed outbound webhooks to downstream systems (CRM, billing, ticketing).

Receivers must be able to trust and dedupe what we send: every request carries the event id
and an HMAC-SHA256 signature over ``"{timestamp}.{body}"``. The timestamp inside the signed
text stops an old request from being replayed later. Failures are sorted into the two
classes of ``integrations.delivery`` so the caller only decides "retry" or "give up".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from integrations.delivery import RetryableDeliveryError, error_for_status, safe_detail
from schemas.webhooks import WebhookEvent

log = logging.getLogger(__name__)

PROVIDER = "webhook"
SIGNATURE_VERSION = "v1"
HEADER_EVENT_ID = "X-Onboarding-Event-Id"
HEADER_EVENT_TYPE = "X-Onboarding-Event-Type"
HEADER_TIMESTAMP = "X-Onboarding-Timestamp"
HEADER_SIGNATURE = "X-Onboarding-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


# Standard Webhooks (https://www.standardwebhooks.com): any receiver can verify with the spec's
# libraries. The signed content is "{webhook-id}.{webhook-timestamp}.{body}".
HEADER_STD_ID = "webhook-id"
HEADER_STD_TIMESTAMP = "webhook-timestamp"
HEADER_STD_SIGNATURE = "webhook-signature"
STD_SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret


def standard_key(secret: str) -> bytes:
    """The signing key: a ``whsec_<base64>`` secret is decoded as the spec says; any other
    secret is used as its UTF-8 bytes (receivers then configure ``whsec_`` + base64 of it)."""
    if secret.startswith(STD_SECRET_PREFIX):
        return base64.b64decode(secret[len(STD_SECRET_PREFIX) :] + "==")
    return secret.encode("utf-8")


def standard_signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` per secret, space-separated: during a rotation receivers holding the
    new or the old secret both verify."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(hmac.new(standard_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def encode_event(event: WebhookEvent) -> bytes:
    """Compact, key-sorted JSON: the same event always yields the same bytes."""
    return json.dumps(
        event.model_dump(mode="json"),
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    ).encode("utf-8")


def compute_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` with the shared secret."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify_signature(
    *,
    secret: str,
    timestamp: str | int,
    signature: str,
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """For receivers: True when ``signature`` (the ``X-Onboarding-Signature`` header) signs
    ``body`` at ``timestamp`` with ``secret`` and the timestamp is within the tolerance.

    ``body`` must be the raw request bytes, not re-serialised JSON. The header may hold several
    comma-separated ``v1=<hex>`` values (e.g. during secret rotation); any match counts.
    """
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        return False
    expected = compute_signature(secret, ts, body)
    ok = False
    for part in signature.split(","):
        version, _, value = part.strip().partition("=")
        if version == SIGNATURE_VERSION and value:
            # No early exit: the comparison time does not depend on which value matched.
            ok |= hmac.compare_digest(expected, value.strip().lower())
    return ok


class WebhookSender:
    """Posts signed events to one endpoint; raises Retryable/PermanentDeliveryError.

    A fresh ``httpx.AsyncClient`` per send: webhooks are infrequent, and it keeps the sender
    free of event-loop-bound state.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        previous_secrets: Sequence[str] = (),
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("webhook url must be an absolute http(s) URL")
        if not secret:
            raise ValueError("webhook secret must not be empty")
        self.url = url
        self._secret = secret
        self._previous = tuple(s for s in previous_secrets if s)  # still signed with: rotation
        self._timeout = timeout
        self._transport = transport
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookSender(host={httpx.URL(self.url).host!r})"

    def build_request(self, event: WebhookEvent) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers to send (signed now)."""
        body = encode_event(event)
        timestamp = int(self._clock())
        signature = compute_signature(self._secret, timestamp, body)
        headers = {
            "Content-Type": "application/json",
            HEADER_EVENT_ID: event.event_id,
            HEADER_EVENT_TYPE: event.event_type,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: f"{SIGNATURE_VERSION}={signature}",
            HEADER_STD_ID: event.event_id,
            HEADER_STD_TIMESTAMP: str(timestamp),
            HEADER_STD_SIGNATURE: standard_signature(
                (self._secret, *self._previous), event.event_id, timestamp, body
            ),
        }
        return body, headers

    async def send(self, event: WebhookEvent) -> int:
        """POST the event once; returns the 2xx status code.

        408, 429, 5xx, timeouts and connection failures raise ``RetryableDeliveryError``; any
        other non-2xx status raises ``PermanentDeliveryError``. Redirects are not followed.
        """
        body, headers = self.build_request(event)
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport, follow_redirects=False
            ) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as e:
            raise RetryableDeliveryError(PROVIDER, f"timed out: {type(e).__name__}") from e
        except httpx.HTTPError as e:
            detail = safe_detail(f"{type(e).__name__}: {e}", [self._secret, *self._previous])
            raise RetryableDeliveryError(PROVIDER, detail) from e
        if 200 <= response.status_code < 300:
            log.info(
                "webhook delivered event=%s type=%s status=%d",
                event.event_id,
                event.event_type,
                response.status_code,
            )
            return response.status_code
        raise error_for_status(
            PROVIDER,
            response.status_code,
            safe_detail(response.text[:2000], [self._secret, *self._previous]),
        )
