"""The events a case notifies people about.

Client milestones and staff notices are kept in one enum so the outbox can
store a single ``milestone`` column, but the two sets are exposed separately
because they differ in audience, channels (staff get no SMS) and templates.

Most milestones belong to client onboarding. ``GENERIC_MILESTONES`` are the
ones any case type (order approval, return request, ...) can send: their
contexts carry the case type's own title and words instead of onboarding's.
"""

from __future__ import annotations

from enum import StrEnum


class Milestone(StrEnum):
    """Every notification kind the case orchestrator can send."""

    # The six client milestones, in case order.
    CASE_CREATED = "case_created"
    DOCUMENTS_RECEIVED = "documents_received"
    COMPLIANCE_APPROVED = "compliance_approved"
    ACCOUNT_PROVISIONING_STARTED = "account_provisioning_started"
    SETUP_COMPLETED = "setup_completed"
    WELCOME_PACKAGE = "welcome_package"
    # Client request for missing or invalid documents (can happen repeatedly).
    DOCUMENTS_NEEDED = "documents_needed"
    # Internal notices to operations staff about stage SLAs.
    SLA_WARNING = "sla_warning"
    SLA_AT_RISK = "sla_at_risk"
    SLA_BREACHED = "sla_breached"
    SLA_ESCALATED = "sla_escalated"
    # Generic milestones any case type can use.
    # Client: an update in the case type's own words, and a proposal to accept or reject.
    CASE_UPDATE = "case_update"
    PROPOSAL = "proposal"
    # Staff: a task is due soon or overdue; a closed or later-stage case was reopened.
    TASK_REMINDER = "task_reminder"
    TASK_OVERDUE = "task_overdue"
    CASE_REOPENED = "case_reopened"
    # Staff: work on a case moved to or from one person (work queues, rebalancing).
    WORK_ASSIGNED = "work_assigned"
    # Staff: the client wrote (portal, email reply, SMS reply); the case owner reads it.
    CLIENT_REPLIED = "client_replied"

    @property
    def is_staff_notice(self) -> bool:
        """Staff notices go to operations, never to the client, and have no SMS."""
        return self in STAFF_NOTICES

    @property
    def is_client_message(self) -> bool:
        """Client messages carry branding, next steps and an SMS variant."""
        return self not in STAFF_NOTICES


CLIENT_MILESTONES: tuple[Milestone, ...] = (
    Milestone.CASE_CREATED,
    Milestone.DOCUMENTS_RECEIVED,
    Milestone.COMPLIANCE_APPROVED,
    Milestone.ACCOUNT_PROVISIONING_STARTED,
    Milestone.SETUP_COMPLETED,
    Milestone.WELCOME_PACKAGE,
)
"""The six milestones every onboarding case reaches, in order."""

CLIENT_MESSAGES: tuple[Milestone, ...] = (
    *CLIENT_MILESTONES,
    Milestone.DOCUMENTS_NEEDED,
    Milestone.CASE_UPDATE,
    Milestone.PROPOSAL,
)
"""Everything that is sent to the client."""

GENERIC_MILESTONES: tuple[Milestone, ...] = (
    Milestone.CASE_UPDATE,
    Milestone.PROPOSAL,
    Milestone.TASK_REMINDER,
    Milestone.TASK_OVERDUE,
    Milestone.CASE_REOPENED,
    Milestone.WORK_ASSIGNED,
    Milestone.CLIENT_REPLIED,
)
"""Milestones for any case type; the rest are client onboarding's own."""

STAFF_NOTICES: frozenset[Milestone] = frozenset(
    {
        Milestone.SLA_WARNING,
        Milestone.SLA_AT_RISK,
        Milestone.SLA_BREACHED,
        Milestone.SLA_ESCALATED,
        Milestone.TASK_REMINDER,
        Milestone.TASK_OVERDUE,
        Milestone.CASE_REOPENED,
        Milestone.WORK_ASSIGNED,
        Milestone.CLIENT_REPLIED,
    }
)
"""Internal notices for operations staff (SLA, tasks, reopened cases)."""
