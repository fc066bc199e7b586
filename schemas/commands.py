"""Inputs of the human steps: signals and updates sent to a running case.

Each carries the actor (who did it) and, where it matters, a reason: they end up in the audit
trail. Updates answer "accepted or not"; signals are fire-and-forget so an operator can also send
them from the Temporal UI or CLI.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.enums import Decision, Stage

ActorField = Field(min_length=1, max_length=120, description="Who is doing this (user id/email).")


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DocumentsReceived(_Command):
    """Signal: the client's documents are in (uploads or a case manager's confirmation)."""

    actor: str = ActorField
    document_ids: list[str] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=2000)
    waive_verification: bool = Field(
        default=False,
        description="Case manager accepts the documents as seen (e.g. originals at a branch). "
        "Needs a note; audited.",
    )

    @model_validator(mode="after")
    def _waiver_needs_a_note(self) -> DocumentsReceived:
        if self.waive_verification and not self.note:
            raise ValueError("a waiver needs a note saying why")
        return self


class ComplianceDecision(_Command):
    """Update: a reviewer approves or rejects the compliance review."""

    decision: Decision
    reviewer: str = ActorField
    reason: str | None = Field(default=None, max_length=2000)


class FinalSignOff(_Command):
    """Update: the final reviewer signs the case off."""

    reviewer: str = ActorField
    note: str | None = Field(default=None, max_length=2000)


class PauseRequest(_Command):
    """Signal: halt automation and stop the SLA clock."""

    actor: str = ActorField
    reason: str = Field(min_length=1, max_length=2000)


class ResumeRequest(_Command):
    actor: str = ActorField
    reason: str = Field(default="resumed", min_length=1, max_length=2000)


class CompleteTask(_Command):
    task_key: str = Field(pattern=r"^[a-z0-9_]+$")
    actor: str = ActorField
    note: str | None = Field(default=None, max_length=2000)


class TaskCompletion(_Command):
    """Body of ``POST /cases/{ref}/tasks/{key}/complete`` (the key comes from the path)."""

    actor: str = ActorField
    note: str | None = Field(default=None, max_length=2000)


class SendBack(_Command):
    to_stage: Stage
    actor: str = ActorField
    reason: str = Field(min_length=1, max_length=2000)


class CancelCase(_Command):
    closure_code: str = Field(pattern=r"^[a-z0-9_]{2,40}$")
    actor: str = ActorField
    reason: str | None = Field(default=None, max_length=2000)


class CommandAccepted(BaseModel):
    """What an update returns: the stage/status right after the command was applied."""

    case_ref: str
    stage: Stage
    status: str
    message: str
