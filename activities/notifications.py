"""Notification delivery: render, route by the client's preferences, send each message once.

Every message goes through the ``notifications`` outbox table, one row per
``outbox_key`` (case, milestone, occurrence, channel). The row is the lock that keeps a
retried or replayed activity from sending the same message twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from jinja2 import TemplateError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.metrics import NOTIFICATIONS, count
from core.settings import Settings
from core.tracing import client_span
from integrations.delivery import (
    AmbiguousDeliveryError,
    EmailMessage,
    EmailSender,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SmsMessage,
    SmsSender,
)
from notifications import Branding, MessageTooLongError, Milestone, RenderedMessage, render
from notifications.variants import pick
from schemas.contracts import DELIVER_FALLBACK
from schemas.enums import Channel
from schemas.notifications import (
    CallbackRequest,
    ChannelResult,
    FallbackInput,
    FallbackResult,
    NotifyInput,
    NotifyResult,
    Recipient,
)
from schemas.work import PERSON
from store import contacts as contact_store
from store.db import SessionFactory
from store.models import CallbackTaskRow, ChannelConsent, NotificationRow

log = logging.getLogger(__name__)

T = TypeVar("T")

HEARTBEAT_EVERY_SECONDS = 5.0
"""How often a long provider call heartbeats while it waits on its thread."""

# Row statuses. Terminal ones are never sent again.
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"  # a retryable error; the next attempt sends again
FALLBACK = "fallback"  # permanent error, the next channel was tried
REJECTED = "rejected"  # permanent error and no channel left to fall back to
CHECKING = "checking"  # an attempt's answer was lost; the provider is asked before a resend
UNCONFIRMED = "unconfirmed"  # in doubt and the provider cannot be asked: staff confirm by hand
LOCAL_OUTBOX = "local_outbox"  # no provider configured: stored, not delivered externally
TERMINAL = frozenset({SENT, FALLBACK, REJECTED, UNCONFIRMED, LOCAL_OUTBOX})

LOCAL_PROVIDER = "local"
IN_APP_PROVIDER = "in_app"
AUDIENCES = ("client", "staff")

UNCONFIRMED_ERROR = (
    "the hand-over to {provider} ended without an answer ({why}); the message may or may "
    "not have been delivered. Not re-sent, to avoid a duplicate: staff should confirm with "
    "the client (or in the provider's activity log) and follow up by hand."
)
DIED_MID_SEND = "an earlier attempt died mid-send"
IN_DOUBT = frozenset({SENDING, CHECKING})
LOOKUP_ATTEMPTS = 10
"""A lookup refused for another reason than access (e.g. a 400) is asked again on later
activity attempts; from this attempt on the row is left to staff (``unconfirmed``)."""


def outbox_key(inp: NotifyInput, channel: Channel | str) -> str:
    """The idempotency key of one message on one channel.

    Client messages: ``{case_ref}:{milestone}:{occurrence}:{channel}``. Staff notices add a
    short hash of the recipient, so the same notice to two staff roles is two messages.
    """
    key = f"{inp.case_ref}:{inp.milestone}:{inp.occurrence}:{Channel(channel).value}"
    if inp.contact_id is not None:
        key += f":contact-{inp.contact_id}"
    if inp.audience == "staff":
        who = (inp.recipient.email or "").strip().lower()
        key += ":staff-" + hashlib.sha256(who.encode()).hexdigest()[:12]
    return key


def route_channels(channels: list[Channel], *, urgent: bool) -> list[Channel]:
    """External channels in delivery order: the client's order, except for urgency.

    Urgent messages go by SMS first when the client has SMS; everything else goes by email
    first when the client has email, because detailed updates read better in an inbox.
    """
    external: list[Channel] = [c for c in channels if c != Channel.IN_APP]
    front = Channel.SMS if urgent else Channel.EMAIL
    if front in external:
        external.remove(front)
        external.insert(0, front)
    return external


@dataclass(frozen=True)
class _InDoubt:
    """An earlier attempt handed the message over and its answer was lost."""

    attempts: int
    since: datetime
    """When that attempt began: the provider's record, if any, is no older."""
    stored: _Outgoing
    """What that attempt sent (the row's copy): a re-render would differ (fresh link)."""


@dataclass(frozen=True)
class _Outgoing:
    """What one channel would send: the stored copy and the provider call."""

    channel: Channel
    recipient: str
    subject: str | None
    body_text: str
    body_html: str | None
    variant: str | None = None  # the A/B template variant it was rendered with


class NotificationActivities:
    """Milestone notifications and callback tasks, with injected provider clients.

    A channel whose provider is ``None`` (the ``make run`` default) goes to the local
    outbox: the row is stored as ``local_outbox`` with provider ``local`` and nothing leaves
    the process.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        email: EmailSender | None,
        sms: SmsSender | None,
        branding: Branding | None = None,
        staff_directory: dict[str, str] | None = None,
        portal_link: Callable[[str], str] | None = None,
        reply_domain: str | None = None,
    ) -> None:
        self._sessions = session_factory
        self._email = email
        self._sms = sms
        self._branding = branding
        self._staff = dict(staff_directory or {})
        self._portal_link = portal_link
        self._reply_domain = reply_domain

    # ================================================================== notify
    @activity.defn(name="notify")
    async def notify(self, inp: NotifyInput) -> NotifyResult:
        """Deliver one milestone message by the recipient's preferences, at most once.

        Routing: client messages always get an in-app row; then the first external channel
        (urgent: SMS first, otherwise email first) is tried. A permanent provider error marks
        that row ``fallback`` and the next channel is tried; a channel without an address is
        skipped. A retryable error leaves the row ``failed`` and raises a retryable
        ``ApplicationError`` so Temporal retries with backoff; rows already ``sent``,
        ``local_outbox``, ``fallback``, ``rejected`` or ``unconfirmed`` are not sent again.

        Exactly once: before a provider call the row is committed as ``sending``. Neither
        SendGrid nor Twilio accepts an idempotency key on a send, so when an attempt loses
        its answer (a read timeout, a reset, the worker killed mid-call) nobody knows yet
        whether the provider took the message. The row becomes ``checking``, and the next
        attempt asks the provider (``find_sent``: SendGrid's activity log by our key, Twilio's
        recent messages by body) before anything is sent again. Found: ``sent``. Not found
        once the provider's listing lag has passed: sent again, as a new attempt. The
        provider cannot be asked (no activity API on the account): ``unconfirmed``, for
        staff to confirm by hand. Never a blind second send.
        """
        inp = self._address_staff(inp)
        milestone, rendered = self._render_linked(inp)
        now = datetime.now(UTC)
        results: list[ChannelResult] = []
        if inp.audience == "client":
            if inp.contact_id is None:  # the portal is the client's own: no contact copy
                results.append(await self._record_in_app(inp, milestone, rendered, now))
            order = route_channels(list(inp.channels), urgent=inp.urgent)
        else:
            order = [Channel.EMAIL]  # staff notices: email only, never SMS or in-app

        candidates: list[_Outgoing] = []
        for channel in order:
            outgoing = self._outgoing(inp, channel, rendered)
            if isinstance(outgoing, str):
                results.append(ChannelResult(channel=channel, status="skipped", detail=outgoing))
                activity.logger.info(
                    "notify skip case=%s milestone=%s channel=%s: %s",
                    inp.case_ref,
                    milestone.value,
                    channel.value,
                    outgoing,
                )
            elif outgoing.channel == Channel.SMS and await self._opted_out(outgoing.recipient):
                results.append(
                    ChannelResult(
                        channel=channel, status="skipped", detail="opted out of SMS (STOP)"
                    )
                )
                activity.logger.info(
                    "notify skip case=%s milestone=%s channel=sms: the number sent STOP",
                    inp.case_ref,
                    milestone.value,
                )
            else:
                candidates.append(outgoing)

        for i, outgoing in enumerate(candidates):
            has_next = i + 1 < len(candidates)
            result = await self._deliver(inp, milestone, outgoing, has_next=has_next)
            results.append(result)
            if result.status != FALLBACK:
                break
        if inp.audience == "client" and inp.contact_id is None:
            for copy in await self._contact_copies(inp):
                results.extend((await self.notify(copy)).results)
        return NotifyResult(results=results)

    async def _contact_copies(self, inp: NotifyInput) -> list[NotifyInput]:
        """The same message for each additional contact whose role receives this milestone,
        addressed to them (each copy has its own outbox key: ``…:contact-<id>``)."""
        async with self._sessions() as session:
            contacts = await contact_store.receiving(session, inp.case_ref, inp.milestone)
        copies = []
        for contact in contacts:
            context = dict(inp.context)
            if "client_name" in context:  # greeted by their own name
                context["client_name"] = contact.name
            copies.append(
                inp.model_copy(
                    update={
                        "recipient": Recipient(
                            name=contact.name,
                            email=contact.email,
                            phone=contact.phone,
                            time_zone=inp.recipient.time_zone,
                        ),
                        "channels": [Channel.EMAIL] if contact.email else [Channel.SMS],
                        "context": context,
                        "contact_id": contact.id,
                    }
                )
            )
        return copies

    async def _opted_out(self, phone: str) -> bool:
        """The number texted STOP (and not START since): no SMS goes to it."""
        async with self._sessions() as session:
            row = await session.get(ChannelConsent, (Channel.SMS.value, phone))
            return bool(row is not None and row.opted_out)

    # ================================================================== fallback
    @activity.defn(name=DELIVER_FALLBACK)
    async def deliver_fallback(self, inp: FallbackInput) -> FallbackResult:
        """The provider gave up on a message it had accepted (a bounce, a drop, an
        undelivered SMS): send the same message on the recipient's next channel.

        Once: the next channel's outbox row has its own key, so a second bounce event, or a
        retry of this activity, finds that row settled and sends nothing more.
        """
        async with self._sessions() as session:
            row = await session.scalar(
                select(NotificationRow).where(NotificationRow.outbox_key == inp.outbox_key)
            )
        if row is None:
            return FallbackResult(detail=f"no message {inp.outbox_key}")
        if row.payload is None:
            return FallbackResult(detail="sent before messages were kept for a fallback")
        original = NotifyInput.model_validate(row.payload)
        failed = Channel(row.channel)
        order = route_channels(list(original.channels), urgent=original.urgent)
        rest = order[order.index(failed) + 1 :] if failed in order else order
        rest = [c for c in rest if c != failed]
        if not rest:
            return FallbackResult(detail=f"no channel after {failed.value} ({inp.reason})")
        result = await self.notify(original.model_copy(update={"channels": rest}))
        sent = next(
            (r for r in result.results if r.status in (SENT, LOCAL_OUTBOX) and r.channel in rest),
            None,
        )
        activity.logger.info(
            "fallback case=%s key=%s after %s: %s",
            original.case_ref,
            inp.outbox_key,
            inp.reason,
            sent.channel.value if sent else "nothing sent",
        )
        if sent is None:
            return FallbackResult(
                detail="; ".join(f"{r.channel.value}: {r.status}" for r in result.results)
            )
        return FallbackResult(sent_on=sent.channel.value, detail=f"sent by {sent.channel.value}")

    def _address_staff(self, inp: NotifyInput) -> NotifyInput:
        """Workflows name a role ("compliance_lead") or a person ("person:maria"); the
        directory in settings knows who. A person without an address of their own is reached
        through their team's (their role's)."""
        if inp.audience != "staff" or inp.recipient.email:
            return inp
        address = self._staff.get(inp.recipient.name)
        if address is None and inp.recipient.name.startswith(PERSON):
            address = self._staff.get(str(inp.context.get("team") or ""))
        if address is None:
            raise ApplicationError(
                f"no address for staff role {inp.recipient.name!r}; add it to STAFF_DIRECTORY",
                type="InvalidNotification",
                non_retryable=True,
            )
        return inp.model_copy(
            update={"recipient": inp.recipient.model_copy(update={"email": address})}
        )

    def _render_linked(self, inp: NotifyInput) -> tuple[Milestone, RenderedMessage]:
        """Render with the client's portal link added, when we can mint one.

        Client messages without a ``portal_url`` get one from ``portal_link`` (a fresh,
        expiring per-case token). The link is a convenience: if it cannot fit (the SMS or the
        URL length limit), the message goes out without it rather than not at all.
        """
        if inp.audience != "client" or self._portal_link is None or inp.context.get("portal_url"):
            return self._render(inp)
        linked = inp.model_copy(
            update={"context": {**inp.context, "portal_url": self._portal_link(inp.case_ref)}}
        )
        try:
            return self._render(linked)
        except ApplicationError as exc:
            if exc.type != "InvalidTemplateContext":
                raise
            activity.logger.warning(
                "portal link left out case=%s milestone=%s: it does not fit the message",
                inp.case_ref,
                inp.milestone,
            )
            return self._render(inp)

    def _render(self, inp: NotifyInput) -> tuple[Milestone, RenderedMessage]:
        """Render before touching anything: a bad context must fail in tests, never at a client."""
        if inp.audience not in AUDIENCES:
            raise ApplicationError(
                f"unknown audience {inp.audience!r} (expected client or staff)",
                type="InvalidNotification",
                non_retryable=True,
            )
        try:
            milestone = Milestone(inp.milestone)
        except ValueError:
            raise ApplicationError(
                f"unknown milestone {inp.milestone!r}",
                type="InvalidTemplateContext",
                non_retryable=True,
            ) from None
        if inp.audience == "client" and milestone.is_staff_notice:
            raise ApplicationError(
                f"{milestone.value} is a staff notice and is never sent to a client",
                type="InvalidNotification",
                non_retryable=True,
            )
        try:
            # the A/B variant: deterministic per case and milestone, so a retry, a fallback
            # and a contact's copy all read the same wording
            variant = pick(milestone.value, inp.case_ref) if inp.audience == "client" else None
            rendered = render(
                milestone,
                inp.context,
                self._branding,
                time_zone=inp.recipient.time_zone,
                variant=variant,
            )
        except (ValueError, TypeError, MessageTooLongError, TemplateError) as exc:
            # pydantic.ValidationError is a ValueError; keep its text short and PII-light
            detail = " ".join(str(exc).split())[:1000]
            raise ApplicationError(
                f"cannot render {milestone.value} for case {inp.case_ref}: {detail}",
                type="InvalidTemplateContext",
                non_retryable=True,
            ) from None
        return milestone, rendered

    def _outgoing(
        self, inp: NotifyInput, channel: Channel, rendered: RenderedMessage
    ) -> _Outgoing | str:
        """The message for one channel, or why that channel is skipped."""
        if channel == Channel.EMAIL:
            if not inp.recipient.email:
                return "no email address"
            return _Outgoing(
                channel,
                inp.recipient.email,
                rendered.subject,
                rendered.text,
                rendered.html,
                rendered.variant,
            )
        if channel == Channel.SMS:
            if not inp.recipient.phone:
                return "no phone number"
            if rendered.sms is None:
                return "this message has no SMS version"
            return _Outgoing(
                channel, inp.recipient.phone, None, rendered.sms, None, rendered.variant
            )
        return f"unsupported channel {channel.value}"  # pragma: no cover - in_app is handled

    async def _record_in_app(
        self, inp: NotifyInput, milestone: Milestone, rendered: RenderedMessage, now: datetime
    ) -> ChannelResult:
        """The client portal's copy: a row is all the delivery there is."""
        async with self._sessions.begin() as session:
            recorded = await session.execute(
                insert(NotificationRow)
                .values(
                    outbox_key=outbox_key(inp, Channel.IN_APP),
                    case_ref=inp.case_ref,
                    milestone=milestone.value,
                    channel=Channel.IN_APP.value,
                    audience=inp.audience,
                    recipient=None,
                    subject=rendered.subject,
                    body_text=rendered.text,
                    body_html=rendered.html,
                    status=SENT,
                    provider=IN_APP_PROVIDER,
                    attempts=1,
                    created_at=now,
                    sent_at=now,
                    variant=rendered.variant,
                )
                .on_conflict_do_nothing(index_elements=["outbox_key"])
            )
        if getattr(recorded, "rowcount", 0) == 1:  # not a retry's second look
            _count(Channel.IN_APP, "recorded")
        return ChannelResult(channel=Channel.IN_APP, status="recorded")

    async def _deliver(
        self, inp: NotifyInput, milestone: Milestone, out: _Outgoing, *, has_next: bool
    ) -> ChannelResult:
        """Claim the outbox row, call the provider once, record what happened."""
        key = outbox_key(inp, out.channel)
        sender = self._email if out.channel == Channel.EMAIL else self._sms
        provider = _provider_name(sender) if sender is not None else LOCAL_PROVIDER
        claim = await self._claim(inp, milestone, out, key, provider, local=sender is None)
        if isinstance(claim, ChannelResult):
            return claim  # settled earlier, or without a provider call (local, unconfirmed)
        assert sender is not None
        if isinstance(claim, _Outgoing):
            out = claim  # the row's copy: a retry sends exactly what the first attempt stored
        else:
            out = claim.stored
            settled = await self._reconcile(
                sender, self._message(inp, milestone, out), key, claim, out.channel
            )
            if settled is not None:
                return settled
            # the provider has no record of it: this attempt sends again

        activity.heartbeat(f"sending {key}")
        try:
            message: Any = self._message(inp, milestone, out)
            with client_span(
                f"{provider} send",
                **{"onboarding.channel": out.channel.value, "onboarding.key": key},
            ):
                receipt = await _in_thread(lambda: sender.send(message, idempotency_key=key), key)
        except PermanentDeliveryError as exc:
            status = FALLBACK if has_next else REJECTED
            _count(out.channel, status)
            await self._finish(key, status=status, error=str(exc))
            activity.logger.warning(
                "notify %s case=%s key=%s: %s", status, inp.case_ref, key, exc.detail
            )
            return ChannelResult(channel=out.channel, status=status, detail=str(exc))
        except AmbiguousDeliveryError as exc:
            _count(out.channel, "in_doubt")
            await self._finish(key, status=CHECKING, error=str(exc))
            activity.logger.warning(
                "notify in doubt case=%s key=%s: %s; the provider is asked before any resend",
                inp.case_ref,
                key,
                exc,
            )
            raise ApplicationError(
                f"{out.channel.value} hand-over lost its answer ({exc}); checking with "
                f"{provider} before sending again",
                type="DeliveryInDoubt",
                next_retry_delay=timedelta(seconds=max(1.0, sender.reconcile_after_seconds)),
            ) from None
        except RetryableDeliveryError as exc:
            _count(out.channel, "retry")
            await self._finish(key, status=FAILED, error=str(exc))
            activity.logger.warning("notify retry later case=%s key=%s: %s", inp.case_ref, key, exc)
            raise ApplicationError(
                f"{out.channel.value} delivery failed for now: {exc}",
                type="RetryableDeliveryError",
            ) from None
        except Exception as exc:
            # Not a provider answer we understand: it may or may not have gone out.
            _count(out.channel, "error")
            await self._finish(key, status=CHECKING, error=f"{type(exc).__name__} mid-send")
            activity.logger.exception("notify in doubt case=%s key=%s", inp.case_ref, key)
            raise
        activity.heartbeat(f"sent {key}")
        _count(out.channel, SENT)
        await self._finish(
            key, status=SENT, provider_message_id=receipt.message_id, provider=receipt.provider
        )
        activity.logger.info(
            "notify sent case=%s key=%s provider=%s id=%s",
            inp.case_ref,
            key,
            receipt.provider,
            receipt.message_id,
        )
        return ChannelResult(
            channel=out.channel, status=SENT, provider_message_id=receipt.message_id
        )

    async def _claim(
        self,
        inp: NotifyInput,
        milestone: Milestone,
        out: _Outgoing,
        key: str,
        provider: str,
        *,
        local: bool,
    ) -> ChannelResult | _InDoubt | _Outgoing:
        """Insert-or-lock the row; an ``_Outgoing`` means "committed as sending: call the
        provider now, with this": the row's stored copy, so every attempt sends the same text
        (a re-render would mint a fresh portal link, and a reconcile by body would miss it).

        ``_InDoubt``: an earlier attempt handed it over and lost the answer; ask the provider.
        Otherwise the returned result says what an earlier attempt already settled (or what
        this one settled without a provider call: local outbox).
        """
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            await session.execute(
                insert(NotificationRow)
                .values(
                    outbox_key=key,
                    case_ref=inp.case_ref,
                    milestone=milestone.value,
                    channel=out.channel.value,
                    audience=inp.audience,
                    recipient=out.recipient,
                    subject=out.subject,
                    body_text=out.body_text,
                    body_html=out.body_html,
                    status=QUEUED,
                    provider=provider,
                    attempts=0,
                    created_at=now,
                    payload=inp.model_dump(mode="json"),  # for a fallback after a bounce
                    contact_id=inp.contact_id,
                    variant=out.variant,
                )
                .on_conflict_do_nothing(index_elements=["outbox_key"])
            )
            row = (
                await session.execute(
                    select(NotificationRow)
                    .where(NotificationRow.outbox_key == key)
                    .with_for_update()
                )
            ).scalar_one()
            if row.status in TERMINAL:
                return ChannelResult(
                    channel=out.channel,
                    status=row.status,
                    provider_message_id=row.provider_message_id,
                    detail=row.error,
                )
            if row.status in IN_DOUBT:
                if row.status == SENDING:
                    row.status, row.error = CHECKING, DIED_MID_SEND
                return _InDoubt(
                    attempts=row.attempts or 0,
                    since=row.sent_at or row.created_at,
                    stored=_stored(row, out),
                )
            if local:
                row.status = LOCAL_OUTBOX
                row.provider = LOCAL_PROVIDER
                row.error = (
                    f"not delivered externally: no {out.channel.value} provider is configured"
                )
                _count(out.channel, LOCAL_OUTBOX)
                activity.logger.warning(
                    "notify LOCAL OUTBOX (not delivered externally) case=%s key=%s to=%s "
                    "subject=%r",
                    inp.case_ref,
                    key,
                    _mask(out.recipient),
                    out.subject,
                )
                return ChannelResult(channel=out.channel, status=LOCAL_OUTBOX, detail=row.error)
            # queued (never tried) or failed (a retryable error): this attempt sends
            row.status = SENDING
            row.provider = provider
            row.attempts = (row.attempts or 0) + 1
            row.error = None
            row.sent_at = now  # while in flight: when this hand-over began
            return _stored(row, out)

    def _message(
        self, inp: NotifyInput, milestone: Milestone, out: _Outgoing
    ) -> EmailMessage | SmsMessage:
        """The provider-neutral message for one channel."""
        if out.channel == Channel.EMAIL:
            return EmailMessage(
                to_email=out.recipient,
                to_name=inp.recipient.name,
                subject=out.subject or "",
                text=out.body_text,
                html=out.body_html or "",
                case_ref=inp.case_ref,
                categories=("onboarding", milestone.value),
                custom_args={"milestone": milestone.value, "audience": inp.audience},
                reply_to=self._reply_address(inp),
            )
        return SmsMessage(to_number=out.recipient, body=out.body_text, case_ref=inp.case_ref)

    def _reply_address(self, inp: NotifyInput) -> str | None:
        """Replies to a client message come back to us, to the case (Inbound Parse reads the
        ref from the plus-address)."""
        if inp.audience != "client" or not self._reply_domain:
            return None
        return f"cases+{inp.case_ref}@{self._reply_domain}"

    async def _reconcile(
        self,
        sender: EmailSender | SmsSender,
        message: EmailMessage | SmsMessage,
        key: str,
        doubt: _InDoubt,
        channel: Channel,
    ) -> ChannelResult | None:
        """Settle an in-doubt row by asking the provider; ``None``: not there, send again
        (the row is this attempt's, as ``sending``)."""
        provider = _provider_name(sender)
        try:
            lookup: Any = message
            receipt = await _in_thread(
                lambda: sender.find_sent(lookup, idempotency_key=key, since=doubt.since), key
            )
        except PermanentDeliveryError as exc:
            cannot_ask = exc.status_code in (None, 401, 403, 404)
            if not cannot_ask and activity.info().attempt < LOOKUP_ATTEMPTS:
                raise ApplicationError(  # an odd answer to one lookup: ask again later
                    f"{provider} could not answer about {key} now: {exc}",
                    type="DeliveryInDoubt",
                ) from None
            error = UNCONFIRMED_ERROR.format(provider=provider, why=exc.detail)
            await self._settle_doubt(key, doubt, status=UNCONFIRMED, error=error)
            _count(channel, UNCONFIRMED)
            activity.logger.error("notify unconfirmed key=%s: %s", key, exc.detail)
            return ChannelResult(channel=channel, status=UNCONFIRMED, detail=error)
        except RetryableDeliveryError as exc:
            raise ApplicationError(
                f"cannot ask {provider} about {key} now: {exc}", type="RetryableDeliveryError"
            ) from None
        if receipt is not None:
            await self._settle_doubt(
                key,
                doubt,
                status=SENT,
                provider_message_id=receipt.message_id,
                provider=receipt.provider,
            )
            _count(channel, "reconciled")
            activity.logger.info("notify reconciled key=%s: %s had it", key, provider)
            return ChannelResult(
                channel=channel, status=SENT, provider_message_id=receipt.message_id
            )
        waited = (datetime.now(UTC) - doubt.since).total_seconds()
        if waited < sender.reconcile_after_seconds:
            left = sender.reconcile_after_seconds - waited
            raise ApplicationError(
                f"{provider} does not list {key} yet; asking again in {left:.0f}s before "
                "sending it again",
                type="DeliveryInDoubt",
                next_retry_delay=timedelta(seconds=max(1.0, left)),
            )
        if not await self._settle_doubt(
            key, doubt, status=SENDING, attempts=doubt.attempts + 1, sent_at=datetime.now(UTC)
        ):
            raise ApplicationError(f"{key} changed while it was checked", type="DeliveryInDoubt")
        activity.logger.warning("notify resend key=%s: %s has no record of it", key, provider)
        return None

    async def _settle_doubt(self, key: str, doubt: _InDoubt, **values: Any) -> bool:
        """Move an in-doubt row on, unless another attempt moved it first (compare-and-set
        on the attempt count)."""
        if values.get("status") == SENT:
            values["sent_at"] = datetime.now(UTC)
        elif values.get("status") == UNCONFIRMED:
            values["sent_at"] = None
        if "error" not in values:
            values["error"] = None
        async with self._sessions.begin() as session:
            done = await session.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.outbox_key == key,
                    NotificationRow.status.in_(IN_DOUBT),
                    NotificationRow.attempts == doubt.attempts,
                )
                .values(**values)
            )
        return bool(getattr(done, "rowcount", 0))

    async def _finish(
        self,
        key: str,
        *,
        status: str,
        error: str | None = None,
        provider_message_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Record the provider's answer. A racing retry may have marked the row unconfirmed
        meanwhile; a definite answer from the provider is better news, so it wins."""
        values: dict[str, Any] = {"status": status, "error": error}
        if status not in (SENT, CHECKING):
            values["sent_at"] = None  # it only marked when the hand-over began
        if status == SENT:
            values.update(provider_message_id=provider_message_id, sent_at=datetime.now(UTC))
            if provider:
                values["provider"] = provider
        async with self._sessions.begin() as session:
            await session.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.outbox_key == key,
                    NotificationRow.status.in_([SENDING, CHECKING, UNCONFIRMED]),
                )
                .values(**values)
            )

    # ================================================================== callbacks
    @activity.defn(name="schedule_callback")
    async def schedule_callback(self, req: CallbackRequest) -> None:
        """Open the callback task for (case, stage) once; a retry or replay changes nothing."""
        async with self._sessions.begin() as session:
            created = await session.scalar(
                insert(CallbackTaskRow)
                .values(
                    case_ref=req.case_ref,
                    stage=req.stage,
                    due_at=req.due_at,
                    status="open",
                    created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["case_ref", "stage"])
                .returning(CallbackTaskRow.id)
            )
        if created is not None:
            activity.logger.info(
                "callback task opened case=%s stage=%s due=%s",
                req.case_ref,
                req.stage,
                req.due_at.isoformat(),
            )


# ====================================================================== helpers
def _stored(row: NotificationRow, fallback: _Outgoing) -> _Outgoing:
    """The outbox row's copy of the message: what was (or will be) handed over."""
    return _Outgoing(
        channel=fallback.channel,
        recipient=row.recipient or fallback.recipient,
        subject=row.subject,
        body_text=row.body_text,
        body_html=row.body_html,
    )


def _provider_name(sender: object) -> str:
    return str(getattr(sender, "provider", type(sender).__name__.lower()))[:20]


def _count(channel: Channel, outcome: str) -> None:
    """One delivery outcome (core/metrics.py): sent, local_outbox, recorded (in-app),
    fallback, rejected, retry, in_doubt, error, reconciled, unconfirmed."""
    count(NOTIFICATIONS, channel=channel.value, outcome=outcome)


def _mask(address: str) -> str:
    """Enough of an address to recognise it in a log, not enough to harvest it."""
    if "@" in address:
        name, _, domain = address.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"***{address[-4:]}"


async def _in_thread(call: Callable[[], T], key: str) -> T:
    """Run a blocking provider client in a thread, heartbeating while it works.

    If the activity is cancelled meanwhile, the thread cannot be stopped: the row stays
    ``sending`` and the next attempt asks the provider before it sends again.
    """
    task = asyncio.ensure_future(asyncio.to_thread(call))
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_SECONDS)
        if done:
            return task.result()
        activity.heartbeat(f"waiting on provider for {key}")


def build_senders(settings: Settings) -> tuple[EmailSender | None, SmsSender | None]:
    """Provider clients from settings; ``None`` for a channel means the local outbox.

    SendGrid needs ``SENDGRID_API_KEY``; Twilio needs the account SID, auth token and from
    number. ``SENDGRID_HOST`` / ``TWILIO_BASE_URL`` point them at stand-ins in tests.
    """
    from integrations.sendgrid_email import SendGridEmailSender
    from integrations.twilio_sms import TwilioSmsSender

    email: EmailSender | None = None
    sms: SmsSender | None = None
    if settings.sendgrid_api_key is not None and settings.sendgrid_api_key.get_secret_value():
        email = SendGridEmailSender(
            settings.sendgrid_api_key.get_secret_value(),
            settings.email_from,
            settings.email_from_name,
            host=settings.sendgrid_host,
            reconcile_after_seconds=settings.sendgrid_reconcile_after_seconds,
        )
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if settings.twilio_account_sid and token and settings.twilio_from_number:
        sms = TwilioSmsSender(
            settings.twilio_account_sid,
            token,
            settings.twilio_from_number,
            base_url=settings.twilio_base_url,
            reconcile_after_seconds=settings.twilio_reconcile_after_seconds,
            status_callback=(
                f"{settings.twilio_webhook_base_url.rstrip('/')}/providers/twilio/status"
                if settings.twilio_webhook_base_url
                else None
            ),
        )
    log.info(
        "notification channels email=%s sms=%s",
        repr(email) if email else "local outbox (SENDGRID_API_KEY unset)",
        repr(sms) if sms else "local outbox (TWILIO_* unset)",
    )
    return email, sms
