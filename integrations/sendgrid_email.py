"""Email delivery through SendGrid's v3 Mail Send API (official SDK).

SendGrid has no request idempotency key, so the key and case reference are
sent as ``custom_args``: SendGrid echoes them in every event webhook, which is
how duplicates and bounces are matched back to the outbox row.

When a send times out after the request left, ``find_sent`` asks SendGrid's Email Activity
API (``GET /v3/messages``, filtered on that custom arg) whether the message was taken, so the
outbox re-sends only what SendGrid never got. That API is an add-on; an account without it
answers 401/403/404, and the outbox then leaves the message for staff to confirm.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
from datetime import datetime
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient

from integrations.delivery import (
    AmbiguousDeliveryError,
    DeliveryReceipt,
    EmailMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
    error_for_status,
    safe_detail,
)

logger = logging.getLogger(__name__)

PROVIDER = "sendgrid"
DEFAULT_HOST = "https://api.sendgrid.com"
ACTIVITY_LAG_SECONDS = 120.0
"""How long after a send the Email Activity API can still miss it (SendGrid documents a
delay of seconds to a few minutes); a "not found" is trusted only after this."""


class _DropHeaderDumps(logging.Filter):
    """python_http_client logs request headers (the API key) at DEBUG; drop those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("HEADERS:")


_http_client_logger = logging.getLogger("python_http_client.client")
if not any(isinstance(f, _DropHeaderDumps) for f in _http_client_logger.filters):
    _http_client_logger.addFilter(_DropHeaderDumps())


class SendGridEmailSender:
    """Sends one rendered email per call; synchronous, so run it in a thread."""

    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        from_email: str,
        from_name: str,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        sandbox_mode: bool = False,
        reconcile_after_seconds: float = ACTIVITY_LAG_SECONDS,
    ) -> None:
        if not api_key:
            raise ValueError("SendGrid api_key is required")
        self._api_key = api_key
        self._from = {"email": from_email, "name": from_name}
        self._timeout = timeout
        self._sandbox_mode = sandbox_mode
        self.reconcile_after_seconds = reconcile_after_seconds
        self.host = (host or DEFAULT_HOST).rstrip("/")
        self._client = SendGridAPIClient(api_key=api_key, host=self.host)

    def __repr__(self) -> str:  # never show the key
        return f"SendGridEmailSender(host={self.host!r}, from_email={self._from['email']!r})"

    def build_request_body(self, msg: EmailMessage, *, idempotency_key: str) -> dict[str, Any]:
        """The v3 mail/send JSON; public so callers can inspect or log its shape."""
        to: dict[str, str] = {"email": msg.to_email}
        if msg.to_name:
            to["name"] = msg.to_name
        custom_args = {str(k): str(v) for k, v in msg.custom_args.items()}
        custom_args["idempotency_key"] = idempotency_key
        if msg.case_ref:
            custom_args["case_ref"] = msg.case_ref
        body: dict[str, Any] = {
            "personalizations": [{"to": [to]}],
            "from": dict(self._from),
            "subject": msg.subject,
            # SendGrid requires text/plain first, then text/html.
            "content": [
                {"type": "text/plain", "value": msg.text},
                {"type": "text/html", "value": msg.html},
            ],
            "custom_args": custom_args,
        }
        if msg.reply_to:
            body["reply_to"] = {"email": msg.reply_to}
        if msg.categories:
            body["categories"] = list(msg.categories)
        if self._sandbox_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    def send(self, msg: EmailMessage, *, idempotency_key: str) -> DeliveryReceipt:
        """Submit the email; map SendGrid/network failures to delivery errors."""
        body = self.build_request_body(msg, idempotency_key=idempotency_key)
        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self._timeout)
        except SendGridHTTPError as exc:
            status = int(exc.status_code)
            detail = safe_detail(_error_text(exc.body), [self._api_key])
            logger.warning(
                "sendgrid rejected email key=%s status=%s: %s", idempotency_key, status, detail
            )
            raise error_for_status(PROVIDER, status, detail) from None
        except urllib.error.URLError as exc:
            # urllib wraps failures while connecting or writing the request: it never arrived
            detail = safe_detail(f"{type(exc).__name__}: {exc}", [self._api_key])
            logger.warning("sendgrid unreachable key=%s: %s", idempotency_key, detail)
            raise RetryableDeliveryError(PROVIDER, detail) from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            # raised while waiting for the answer: the request left, SendGrid may have it
            detail = safe_detail(f"{type(exc).__name__}: {exc}", [self._api_key])
            logger.warning("sendgrid answer lost key=%s: %s", idempotency_key, detail)
            raise AmbiguousDeliveryError(PROVIDER, detail) from None
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        logger.info(
            "sendgrid accepted email key=%s status=%s message_id=%s",
            idempotency_key,
            response.status_code,
            message_id,
        )
        return DeliveryReceipt(provider=PROVIDER, message_id=message_id)

    def find_sent(
        self, msg: EmailMessage, *, idempotency_key: str, since: datetime
    ) -> DeliveryReceipt | None:
        """Ask the Email Activity API for a message carrying our idempotency key.

        ``since`` is unused: the key names one message for ever, whenever it went out.
        """
        del since
        try:
            query = activity_query(idempotency_key, msg.to_email)
        except ValueError as exc:
            raise PermanentDeliveryError(PROVIDER, f"cannot look up: {exc}") from None
        try:
            response = self._client.client.messages.get(
                query_params={"query": query, "limit": 10}, timeout=self._timeout
            )
        except SendGridHTTPError as exc:
            status = int(exc.status_code)
            detail = safe_detail(_error_text(exc.body), [self._api_key])
            if status in (401, 403, 404):
                raise PermanentDeliveryError(
                    PROVIDER,
                    f"cannot check the Email Activity API (HTTP {status}: {detail}); the "
                    "account needs the Email Activity add-on and a key with its scope",
                    status_code=status,
                ) from None
            raise error_for_status(PROVIDER, status, detail) from None
        except (
            TimeoutError,
            ConnectionError,
            urllib.error.URLError,
            http.client.HTTPException,
        ) as exc:
            detail = safe_detail(f"{type(exc).__name__}: {exc}", [self._api_key])
            raise RetryableDeliveryError(PROVIDER, f"activity lookup: {detail}") from None
        try:
            payload = json.loads(response.body or b"{}")
        except ValueError:
            raise RetryableDeliveryError(PROVIDER, "activity lookup: not JSON") from None
        messages = payload.get("messages") if isinstance(payload, dict) else None
        for found in messages or []:
            if isinstance(found, dict) and found.get("msg_id"):
                logger.info(
                    "sendgrid already has email key=%s message_id=%s",
                    idempotency_key,
                    found["msg_id"],
                )
                return DeliveryReceipt(provider=PROVIDER, message_id=str(found["msg_id"]))
        return None


def activity_query(idempotency_key: str, to_email: str) -> str:
    """The Email Activity query for one message: our custom arg, and the recipient."""
    for value in (idempotency_key, to_email):
        if '"' in value or "\\" in value:
            raise ValueError("a quote or backslash cannot appear in an activity query")
    return f'unique_args[\'idempotency_key\']="{idempotency_key}" AND to_email="{to_email}"'


def _error_text(body: bytes | str | None) -> str:
    """Join SendGrid's ``{"errors": [{"message", "field"}]}`` into one line."""
    if body is None:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return raw
    parts = []
    for err in errors:
        if not isinstance(err, dict):
            continue
        field = err.get("field")
        message = str(err.get("message") or "")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts) or raw
