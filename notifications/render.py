"""Turn a milestone + validated context into subject, HTML, text and SMS.

Rendering is pure (no I/O besides loading packaged templates) so the outbox
can render at enqueue time, store the result, and a preview command can show
exactly what a client would receive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    Template,
    pass_context,
    select_autoescape,
)
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from notifications.contexts import (
    AccountProvisioningStartedContext,
    CaseCreatedContext,
    CaseReopenedContext,
    CaseUpdateContext,
    ClientRepliedContext,
    ComplianceApprovedContext,
    DocumentsNeededContext,
    DocumentsReceivedContext,
    MessageContext,
    NeededDocument,
    NotificationContext,
    ProposalContext,
    SetupCompletedContext,
    SlaAtRiskContext,
    SlaBreachedContext,
    SlaEscalatedContext,
    SlaWarningContext,
    TaskOverdueContext,
    TaskReminderContext,
    WelcomePackageContext,
    WelcomeResource,
    WorkAssignedContext,
    context_model,
)
from notifications.milestones import Milestone
from notifications.variants import template_name

logger = logging.getLogger(__name__)

SMS_MAX_CHARS = 320
"""Two concatenated GSM-7 segments; longer texts cost more and arrive split."""

_ELLIPSIS = "..."  # ASCII on purpose: one non-GSM character turns the SMS into UCS-2.


class Branding(BaseModel):
    """Look and sign-off of client messages; defaults suit local dev and previews."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand_name: str = Field(default="Northbridge Onboarding", min_length=1, max_length=40)
    primary_color: str = Field(default="#1F4E79", pattern=r"^#[0-9A-Fa-f]{6}$")
    support_email: str = Field(
        default="onboarding-support@example.com", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    logo_url: HttpUrl | None = None
    footer_text: str = Field(
        default="You are receiving this message because an onboarding case is open in your name.",
        max_length=300,
    )
    postal_address: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One notification in every format; ``sms`` is None for staff notices."""

    subject: str
    html: str
    text: str
    sms: str | None
    variant: str | None = None
    """The A/B template variant it was rendered with (``notifications.variants``); None: base."""


class MessageTooLongError(ValueError):
    """The SMS cannot be made to fit even after shortening the next steps."""


# --------------------------------------------------------------------------- jinja


def _zone(context: Any) -> tzinfo:
    """The recipient's zone (``time_zone`` in the render variables); UTC when unset or
    unknown, so a bad value never stops a message."""
    name = context.get("time_zone") if context is not None else None
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@pass_context
def _fmt_date(context: Any, value: datetime | None) -> str:
    """Dates for clients, on the client's calendar: unambiguous across locales
    (``3 March 2025``)."""
    if value is None:
        return "to be confirmed"
    value = value.astimezone(_zone(context))
    return f"{value.day} {value:%B %Y}"


@pass_context
def _fmt_datetime(context: Any, value: datetime) -> str:
    """Timestamps: in the recipient's zone when known (``2025-03-03 10:30 CET``), else UTC,
    so on-call staff in any zone agree."""
    zone = _zone(context)
    local = value.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC")


def _fmt_duration(value: timedelta) -> str:
    """Human SLA durations (``1 d 4 h``, ``2 h 15 min``, ``45 min``)."""
    minutes = int(value.total_seconds() // 60)
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


_PORTIONS: tuple[tuple[float, str], ...] = (
    (1 / 4, "a quarter"),
    (1 / 3, "a third"),
    (1 / 2, "half"),
    (2 / 3, "two thirds"),
    (3 / 4, "three quarters"),
)


def _fmt_portion(value: float) -> str:
    """A share of a time budget in words (``half``, ``two thirds``, ``80%``)."""
    for share, words in _PORTIONS:
        if abs(value - share) < 0.005:
            return words
    return f"{round(value * 100)}%"


def _paragraphs(value: str) -> list[list[str]]:
    """Split text into paragraphs (at blank lines), each a list of its lines.

    Templates print each line on its own so HTML autoescaping still applies to
    every piece of client-supplied text; only the ``<p>``/``<br>`` come from us.
    """
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in value.splitlines():
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """One shared environment; StrictUndefined turns template typos into errors."""
    env = Environment(
        loader=PackageLoader("notifications", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["date"] = _fmt_date
    env.filters["datetime"] = _fmt_datetime
    env.filters["duration"] = _fmt_duration
    env.filters["portion"] = _fmt_portion
    env.filters["paragraphs"] = _paragraphs
    return env


# --------------------------------------------------------------------------- render


def _coerce(milestone: Milestone, context: MessageContext | Mapping[str, Any]) -> MessageContext:
    """Accept a model or a plain mapping (e.g. JSON from an outbox row)."""
    model = context_model(milestone)
    if isinstance(context, BaseModel):
        if not isinstance(context, model):
            raise TypeError(
                f"{milestone.value} needs a {model.__name__}, got {type(context).__name__}"
            )
        return context
    return model.model_validate(dict(context))


def _sms_flex(ctx: MessageContext) -> tuple[str, str]:
    """The part of an SMS that may be shortened to fit: its template variable and text.

    Usually the next steps (``sms_next_steps``, empty if there are none); for a
    proposal, the proposal itself (``sms_proposal``), since the link says the rest.
    """
    if isinstance(ctx, ProposalContext):
        name, text = "sms_proposal", " ".join(ctx.proposal.split())
    elif isinstance(ctx, NotificationContext):
        name, text = "sms_next_steps", "; ".join(ctx.next_steps)
    else:  # pragma: no cover - every client message has one of the above
        raise TypeError(f"{type(ctx).__name__} has no SMS variant")
    if text and not text.endswith((".", "!", "?")):
        text += "."
    return name, text


def _render_sms(milestone: Milestone, variables: dict[str, Any], variant: str | None = None) -> str:
    """Render the SMS, shortening only the flexible part if it is too long.

    The case reference and link must survive, so the next steps (or the
    proposal text) absorb any overflow; if even that is not enough the message
    is refused.
    """
    template = template_environment().get_template(
        template_name(milestone.value, "sms.txt.j2", variant)
    )
    name, flex = _sms_flex(variables["ctx"])
    sms = " ".join(template.render(**variables, **{name: flex}).split())
    overflow = len(sms) - SMS_MAX_CHARS
    if overflow <= 0:
        return sms
    keep = len(flex) - overflow - len(_ELLIPSIS)
    if keep < 20:
        raise MessageTooLongError(
            f"{milestone.value} SMS is {len(sms)} chars; cannot fit {SMS_MAX_CHARS}"
        )
    short = flex[:keep].rstrip(" ;,.") + _ELLIPSIS
    sms = " ".join(template.render(**variables, **{name: short}).split())
    if len(sms) > SMS_MAX_CHARS:  # pragma: no cover - whitespace collapse only shrinks
        raise MessageTooLongError(f"{milestone.value} SMS is {len(sms)} chars")
    logger.debug("shortened %s SMS next steps by %d chars", milestone.value, overflow)
    return sms


def render(
    milestone: Milestone | str,
    context: MessageContext | Mapping[str, Any],
    branding: Branding | None = None,
    *,
    time_zone: str | None = None,
    variant: str | None = None,
) -> RenderedMessage:
    """Render every format of one notification.

    ``variant`` names an A/B template variant of the milestone (``variants.pick``): its own
    files replace the base ones, a file it lacks falls back to the base template.

    Raises ``pydantic.ValidationError`` for a bad context mapping, ``TypeError``
    for a context model of the wrong milestone, ``MessageTooLongError`` if
    the SMS cannot fit ``SMS_MAX_CHARS``, and ``variants.UnknownVariantError`` (a
    ``ValueError``) for a variant the milestone does not declare.
    """
    milestone = Milestone(milestone)
    ctx = _coerce(milestone, context)
    brand = branding if branding is not None else Branding()
    env = template_environment()

    def template(file: str) -> Template:
        """The variant's own file if it has one, else the base template."""
        return env.get_template(template_name(milestone.value, file, variant))

    variables: dict[str, Any] = {
        "ctx": ctx,
        "brand": brand,
        "milestone": milestone,
        "time_zone": time_zone,  # the recipient's: dates and times are given in it
    }
    subject = " ".join(template("subject.txt.j2").render(**variables).split())
    # The subject is passed in rather than included: an included .txt template
    # would be compiled without autoescaping and leak raw markup into <title>.
    html = template("body.html.j2").render(**variables, subject=subject)
    text = template("body.txt.j2").render(**variables).strip() + "\n"
    sms = _render_sms(milestone, variables, variant) if milestone.is_client_message else None
    return RenderedMessage(subject=subject, html=html, text=text, sms=sms, variant=variant)


# --------------------------------------------------------------------------- samples

_NOW = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
_PORTAL = "https://portal.example.com/cases/ONB-2025-000123"
_CASE_URL = "https://ops.example.com/cases/ONB-2025-000123"


def _common(status: str, next_steps: list[str]) -> dict[str, Any]:
    return {
        "case_ref": "ONB-2025-000123",
        "client_name": "Acme Logistics GmbH",
        "status": status,
        "next_steps": next_steps,
        "estimated_completion": _NOW + timedelta(days=12),
        "portal_url": _PORTAL,
    }


def _sla_common(status: str) -> dict[str, Any]:
    return {
        **_common(
            status, ["Check the outstanding document review", "Contact the client if blocked"]
        ),
        "portal_url": None,
        "stage": "Compliance review",
        "stage_started_at": _NOW - timedelta(hours=40),
        "sla_due_at": _NOW + timedelta(hours=8),
        "assignee": "Priya Raman",
        "case_url": _CASE_URL,
    }


def sample_context(milestone: Milestone | str) -> MessageContext:
    """Realistic sample data for previews and template smoke tests."""
    milestone = Milestone(milestone)
    match milestone:
        case Milestone.CASE_CREATED:
            return CaseCreatedContext(
                **_common(
                    "We have opened your onboarding case",
                    ["Upload the listed documents in the client portal"],
                ),
                product_name="Business Current Account (EUR)",
                required_documents=[
                    "Certificate of incorporation",
                    "Register of beneficial owners",
                    "Passport of each director",
                ],
            )
        case Milestone.DOCUMENTS_RECEIVED:
            return DocumentsReceivedContext(
                **_common(
                    "Documents received and under review",
                    [
                        "Upload the remaining document",
                        "We will review everything within 2 business days",
                    ],
                ),
                documents_received=[
                    "Certificate of incorporation",
                    "Register of beneficial owners",
                ],
                documents_outstanding=["Passport of each director"],
            )
        case Milestone.DOCUMENTS_NEEDED:
            return DocumentsNeededContext(
                **_common(
                    "We need a few more documents",
                    ["Upload the listed documents in the client portal"],
                ),
                documents_needed=[
                    NeededDocument(
                        name="Proof of address", reason="The document is older than 3 months"
                    ),
                    NeededDocument(
                        name="Passport of Jane Doe", reason="The image is blurred and unreadable"
                    ),
                ],
                respond_by=_NOW + timedelta(days=5),
            )
        case Milestone.COMPLIANCE_APPROVED:
            return ComplianceApprovedContext(
                **_common(
                    "Compliance review approved",
                    ["No action needed: we are preparing your accounts"],
                ),
                approved_at=_NOW,
                checks_completed=[
                    "Identity verification",
                    "Sanctions screening",
                    "Beneficial ownership",
                ],
            )
        case Milestone.ACCOUNT_PROVISIONING_STARTED:
            return AccountProvisioningStartedContext(
                **_common(
                    "Your accounts are being set up",
                    ["Watch for an email inviting you to set up online banking"],
                ),
                accounts=["Business Current Account (EUR)", "Business Savings Account (EUR)"],
                started_at=_NOW,
            )
        case Milestone.SETUP_COMPLETED:
            return SetupCompletedContext(
                **_common(
                    "Your account is ready",
                    ["Sign in to online banking and set up your users", "Order company cards"],
                ),
                account_name="Business Current Account (EUR)",
                account_number_last4="4821",
                completed_at=_NOW,
            )
        case Milestone.WELCOME_PACKAGE:
            return WelcomePackageContext(
                **_common(
                    "Welcome aboard",
                    ["Book an introduction call with your relationship manager"],
                ),
                relationship_manager_name="Daniel Okafor",
                relationship_manager_email="daniel.okafor@example.com",
                resources=[
                    WelcomeResource(
                        title="Getting started guide", url="https://example.com/guides/start"
                    ),
                    WelcomeResource(title="Fee schedule", url="https://example.com/fees"),
                ],
            )
        case Milestone.SLA_WARNING:
            return SlaWarningContext(
                **_sla_common("Compliance review is close to its SLA"),
                time_remaining=timedelta(hours=8),
            )
        case Milestone.SLA_AT_RISK:
            return SlaAtRiskContext(
                **_sla_common("Compliance review is at risk of missing its SLA"),
                time_remaining=timedelta(hours=8),
                risk_reason="Waiting for the client to resend a passport scan",
            )
        case Milestone.SLA_BREACHED:
            return SlaBreachedContext(
                **_sla_common("Compliance review missed its SLA"),
                overdue_by=timedelta(hours=2, minutes=15),
            )
        case Milestone.SLA_ESCALATED:
            return SlaEscalatedContext(
                **_sla_common("Compliance review escalated"),
                overdue_by=timedelta(days=1, hours=3),
                escalated_to="Head of Onboarding Operations",
                escalation_level=2,
            )
        case Milestone.CASE_UPDATE:
            return CaseUpdateContext(
                **_common(
                    "Approved, preparing dispatch",
                    ["Check the delivery address in the client portal"],
                ),
                case_title="Order approval",
                heading="Your order has been approved",
                lines=[
                    "Our credit team approved your order of 40 pallets of A4 copy paper.",
                    "The warehouse will confirm the dispatch date within 2 business days.",
                ],
            )
        case Milestone.PROPOSAL:
            return ProposalContext(
                case_ref="ONB-2025-000123",
                client_name="Acme Logistics GmbH",
                case_title="Return request",
                proposal=(
                    "We offer a refund of EUR 420.00 for the 3 damaged pallets.\n\n"
                    "You keep the goods; no return shipment is needed."
                ),
                respond_by=_NOW + timedelta(days=7),
                portal_url=_PORTAL,
            )
        case Milestone.TASK_REMINDER:
            return TaskReminderContext(
                case_ref="ONB-2025-000123",
                task_title="Check the credit limit",
                stage="Credit review",
                assignee_role="credit_analyst",
                due_at=_NOW + timedelta(hours=4),
                fraction=0.5,
                case_url=_CASE_URL,
            )
        case Milestone.TASK_OVERDUE:
            return TaskOverdueContext(
                case_ref="ONB-2025-000123",
                task_title="Check the credit limit",
                stage="Credit review",
                assignee_role="credit_analyst",
                due_at=_NOW - timedelta(hours=2),
                escalated_to="operations_lead",
                case_url=_CASE_URL,
            )
        case Milestone.CASE_REOPENED:
            return CaseReopenedContext(
                case_ref="ONB-2025-000123",
                stage="Compliance review",
                reason="The client sent a new register of beneficial owners after approval.",
                by="Priya Raman (compliance_lead)",
                case_url=_CASE_URL,
            )
        case Milestone.WORK_ASSIGNED:
            return WorkAssignedContext(
                case_ref="ONB-2025-000123",
                person="kofi",
                team="case_manager",
                title="Verify the beneficial owners",
                stage="Compliance review",
                by="rebalancing",
                to="kofi",
                previous="maria",
                reason="maria holds 4 cases near breach; kofi has the fewest open items",
                via="rebalancing",
                case_url=_CASE_URL,
            )
        case Milestone.CLIENT_REPLIED:
            return ClientRepliedContext(
                case_ref="ONB-2025-000123",
                stage="Document collection",
                excerpt="Hi, the utility bill is attached. The passport scan follows tomorrow.",
                channel="email",
                reopened=False,
                case_url=_CASE_URL,
            )
    raise ValueError(f"no sample for {milestone}")  # pragma: no cover - match is exhaustive
