"""Provider-neutral delivery types shared by the email and SMS adapters.

Callers (the outbox activity) only need to know two things about a failure:
try again later, or give up and record why. Adapters translate each
provider's errors into exactly those two classes so retry policy lives in
one place and provider SDK exceptions never leak past ``integrations/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

_MAX_DETAIL_CHARS = 500


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Proof the provider accepted the message (not that it was delivered)."""

    provider: str
    message_id: str | None


class DeliveryError(Exception):
    """Base class; carries only what is safe to log and store."""

    def __init__(
        self,
        provider: str,
        detail: str,
        *,
        status_code: int | None = None,
        provider_code: int | str | None = None,
    ) -> None:
        self.provider = provider
        self.detail = detail
        self.status_code = status_code
        self.provider_code = provider_code
        super().__init__(self._summary())

    def _summary(self) -> str:
        status = f" HTTP {self.status_code}" if self.status_code is not None else ""
        code = f" (code {self.provider_code})" if self.provider_code is not None else ""
        return f"{self.provider}{status}{code}: {self.detail}"

    def __reduce__(self) -> tuple[object, ...]:
        """Keep keyword-only fields when pickled (e.g. across process pools)."""
        return (
            _rebuild_error,
            (type(self), self.provider, self.detail, self.status_code, self.provider_code),
        )


def _rebuild_error(
    cls: type[DeliveryError],
    provider: str,
    detail: str,
    status_code: int | None,
    provider_code: int | str | None,
) -> DeliveryError:
    return cls(provider, detail, status_code=status_code, provider_code=provider_code)


class RetryableDeliveryError(DeliveryError):
    """Throttling (429), provider outage (5xx), timeout or connection failure."""


class PermanentDeliveryError(DeliveryError):
    """The provider rejected the request (other 4xx); retrying will not help."""


class AmbiguousDeliveryError(RetryableDeliveryError):
    """The request left in full but no answer came back (read timeout, connection reset).

    The provider may have accepted it. Sending again blindly is how duplicates happen, so
    the caller asks the provider first (``find_sent``) before it sends again.
    """


def is_retryable_status(status_code: int) -> bool:
    """408/429 and every 5xx are transient; other 4xx mean the request is wrong."""
    return status_code in (408, 429) or status_code >= 500


def error_for_status(
    provider: str,
    status_code: int,
    detail: str,
    *,
    provider_code: int | str | None = None,
) -> DeliveryError:
    """Pick the error class for an HTTP failure status."""
    cls = RetryableDeliveryError if is_retryable_status(status_code) else PermanentDeliveryError
    return cls(provider, detail, status_code=status_code, provider_code=provider_code)


def safe_detail(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Bound provider error text and scrub any credential that was echoed back."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 3] + "..."
    return text or "no error detail from provider"


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One email to one recipient, already rendered."""

    to_email: str
    subject: str
    text: str
    html: str
    to_name: str | None = None
    case_ref: str | None = None
    reply_to: str | None = None
    categories: tuple[str, ...] = ()
    custom_args: Mapping[str, str] = field(default_factory=dict)
    """Extra provider-side tags (e.g. milestone) echoed back in delivery webhooks."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One SMS to one E.164 number, already rendered."""

    to_number: str
    body: str
    case_ref: str | None = None


@runtime_checkable
class EmailSender(Protocol):
    """Anything that can hand an email to a provider."""

    reconcile_after_seconds: float
    """How long the provider may take to list an accepted message (``find_sent``)."""

    def send(self, msg: EmailMessage, *, idempotency_key: str) -> DeliveryReceipt:
        """Submit once; raise Retryable/Ambiguous/PermanentDeliveryError on failure."""
        ...

    def find_sent(
        self, msg: EmailMessage, *, idempotency_key: str, since: datetime
    ) -> DeliveryReceipt | None:
        """The provider's receipt if it accepted this message at or after ``since``; None if
        it has no record. Raises RetryableDeliveryError when it cannot tell now, and
        PermanentDeliveryError when it can never tell (e.g. the account lacks the API)."""
        ...


@runtime_checkable
class SmsSender(Protocol):
    """Anything that can hand an SMS to a provider."""

    reconcile_after_seconds: float

    def send(self, msg: SmsMessage, *, idempotency_key: str) -> DeliveryReceipt:
        """Submit once; raise Retryable/Ambiguous/PermanentDeliveryError on failure."""
        ...

    def find_sent(
        self, msg: SmsMessage, *, idempotency_key: str, since: datetime
    ) -> DeliveryReceipt | None:
        """As ``EmailSender.find_sent``."""
        ...
