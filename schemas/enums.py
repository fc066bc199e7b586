"""String enums shared by the API, the workflow and the read model.

They are ``StrEnum`` so they serialise as plain strings in JSON, in Temporal payloads, in
search attributes and in Postgres.
"""

from enum import StrEnum


class Stage(StrEnum):
    """Where a case is in the onboarding process."""

    ACKNOWLEDGEMENT = "acknowledgement"
    DOCUMENT_COLLECTION = "document_collection"
    COMPLIANCE_REVIEW = "compliance_review"
    SECURITY_REVIEW = "security_review"
    ACCOUNT_SETUP = "account_setup"
    FINAL_REVIEW = "final_review"
    WELCOME = "welcome"


class CaseStatus(StrEnum):
    """Lifecycle status of a case (independent of its stage)."""

    DRAFT = "draft"  # accepted by the API, workflow not started yet
    OPEN = "open"
    WAITING_ON_CLIENT = "waiting_on_client"
    PAUSED = "paused"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def is_closed(self) -> bool:
        """A closed case accepts no more commands."""
        return self in (CaseStatus.COMPLETED, CaseStatus.REJECTED, CaseStatus.CANCELLED)


class ClientType(StrEnum):
    INDIVIDUAL = "individual"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


class ClientTier(StrEnum):
    STANDARD = "standard"
    PREMIUM = "premium"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"


class SlaState(StrEnum):
    """Shown to operators as the ``SlaState`` search attribute."""

    ON_TRACK = "on_track"
    WARNING = "warning"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
