"""SMS delivery through Twilio's Messages API (official SDK).

Tests and local stacks point the SDK at a stand-in with ``base_url``; the SDK
builds absolute ``https://api.twilio.com`` URLs itself, so the override is a
small ``TwilioHttpClient`` subclass that rewrites only the scheme and host.

Twilio takes no idempotency key. When a create times out after the request left,
``find_sent`` lists the recent messages to that number from our number and looks for the same
body created since the attempt began, so the outbox re-sends only what Twilio never got.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from integrations.delivery import (
    AmbiguousDeliveryError,
    DeliveryReceipt,
    RetryableDeliveryError,
    SmsMessage,
    error_for_status,
    safe_detail,
)

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
TWILIO_API_HOST = "api.twilio.com"
LIST_LAG_SECONDS = 15.0
"""A created message is listed at once; this covers clock skew and a slow create."""
RECENT_MESSAGES = 50
"""How many of the newest messages to that number a lookup reads."""
CLOCK_SKEW = timedelta(minutes=2)


class BaseUrlTwilioHttpClient(TwilioHttpClient):
    """Send Twilio API calls to ``base_url`` instead of ``*.twilio.com``.

    Only URLs on a twilio.com host are rewritten (path and query are kept),
    so an override can never redirect traffic meant for somewhere else.
    """

    def __init__(self, base_url: str, *, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")

    def rewrite(self, url: str) -> str:
        """Map ``https://api.twilio.com/2010-04-01/...`` onto the override."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class TwilioSmsSender:
    """Sends one SMS per call; synchronous, so run it in a thread.

    Twilio's Messages API has no idempotency key; the key is logged with the
    returned SID so a duplicate after an ambiguous timeout can be traced.
    """

    provider = PROVIDER

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        status_callback: str | None = None,
        reconcile_after_seconds: float = LIST_LAG_SECONDS,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio account_sid and auth_token are required")
        self._auth_token = auth_token
        self._from_number = from_number
        self._status_callback = status_callback
        self.reconcile_after_seconds = reconcile_after_seconds
        self.base_url = base_url
        http_client = (
            BaseUrlTwilioHttpClient(base_url, timeout=timeout)
            if base_url
            else TwilioHttpClient(timeout=timeout)
        )
        self._client = Client(account_sid, auth_token, http_client=http_client)

    def __repr__(self) -> str:  # never show the token
        return f"TwilioSmsSender(base_url={self.base_url!r}, from_number={self._from_number!r})"

    def send(self, msg: SmsMessage, *, idempotency_key: str) -> DeliveryReceipt:
        """Create the message; map Twilio/network failures to delivery errors."""
        kwargs: dict[str, str] = {"to": msg.to_number, "from_": self._from_number, "body": msg.body}
        if self._status_callback:  # carries our key, so a callback finds its outbox row
            sep = "&" if "?" in self._status_callback else "?"
            kwargs["status_callback"] = (
                f"{self._status_callback}{sep}{urlencode({'key': idempotency_key})}"
            )
        try:
            message = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            detail = safe_detail(_rest_error_text(exc), [self._auth_token])
            logger.warning(
                "twilio rejected sms key=%s status=%s code=%s: %s",
                idempotency_key,
                exc.status,
                exc.code,
                detail,
            )
            raise error_for_status(
                PROVIDER, int(exc.status), detail, provider_code=exc.code
            ) from None
        except TwilioServiceException as exc:
            detail = safe_detail(f"{exc.title}: {exc.detail or ''}", [self._auth_token])
            logger.warning(
                "twilio rejected sms key=%s status=%s code=%s: %s",
                idempotency_key,
                exc.status,
                exc.code,
                detail,
            )
            raise error_for_status(
                PROVIDER, int(exc.status), detail, provider_code=exc.code
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            if _never_connected(exc):
                detail = safe_detail(f"{type(exc).__name__}: {exc}", [self._auth_token])
                logger.warning("twilio unreachable key=%s: %s", idempotency_key, detail)
                raise RetryableDeliveryError(PROVIDER, detail) from None
            # read timeout or reset after the request left: Twilio may have created it
            detail = safe_detail(f"{type(exc).__name__}: {exc}", [self._auth_token])
            logger.warning("twilio answer lost key=%s: %s", idempotency_key, detail)
            raise AmbiguousDeliveryError(PROVIDER, detail) from None
        logger.info(
            "twilio accepted sms key=%s sid=%s status=%s",
            idempotency_key,
            message.sid,
            message.status,
        )
        return DeliveryReceipt(provider=PROVIDER, message_id=message.sid)

    def find_sent(
        self, msg: SmsMessage, *, idempotency_key: str, since: datetime
    ) -> DeliveryReceipt | None:
        """The newest message to ``msg.to_number`` from our number with the same body,
        created at or after ``since`` (less clock skew); None if there is none."""
        try:
            recent = self._client.messages.list(
                to=msg.to_number, from_=self._from_number, limit=RECENT_MESSAGES
            )
        except TwilioRestException as exc:
            detail = safe_detail(_rest_error_text(exc), [self._auth_token])
            raise error_for_status(
                PROVIDER, int(exc.status), f"message lookup: {detail}", provider_code=exc.code
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            detail = safe_detail(f"{type(exc).__name__}: {exc}", [self._auth_token])
            raise RetryableDeliveryError(PROVIDER, f"message lookup: {detail}") from None
        floor = since - CLOCK_SKEW
        for message in recent:
            created = message.date_created
            if message.body == msg.body and (created is None or created >= floor):
                logger.info("twilio already has sms key=%s sid=%s", idempotency_key, message.sid)
                return DeliveryReceipt(provider=PROVIDER, message_id=message.sid)
        return None


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout): the request
    cannot have reached Twilio, so a plain retry is safe."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return any(
        mark in text for mark in ("NewConnectionError", "NameResolutionError", "Connection refused")
    )


def _rest_error_text(exc: TwilioRestException) -> str:
    """The SDK prefixes ``Unable to create record:``; keep just Twilio's message."""
    text = str(exc.msg or "")
    prefix = "Unable to create record: "
    return text[len(prefix) :] if text.startswith(prefix) else text
