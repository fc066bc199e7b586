"""Human steps on an engine case: one input model per workflow update.

Every command names the actor and the actor's role; the API fills both from the authenticated
caller, so an approval's identity cannot be typed into a body. Text is bounded and clean
(``schemas.text``): a bad string is a 422 at the API and never reaches history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.text import Actor, Key, Line, Text


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    actor: Actor
    role: Line = Field(default="case_manager", description="The actor's role (set by the API)")


class PauseCase(_Command):
    reason: Text


class ResumeCase(_Command):
    reason: Text = "resumed"


class Decide(_Command):
    """Approve or reject the current approval element (``element`` picks one if several)."""

    decision: Literal["approve", "reject"]
    element: Key | None = None
    reason_code: Key | None = Field(default=None, description="From the case type's list")
    note: Text | None = None

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> Decide:
        if self.decision == "reject" and (self.reason_code is None or self.note is None):
            raise ValueError("a rejection needs a reason_code and a note")
        return self


class CompleteTaskCmd(_Command):
    task_key: Key
    note: Text | None = None
    outcome: Key | None = Field(default=None, description="Callback tasks: what happened")


class SkipElement(_Command):
    element: Key
    reason: Text


class TickItem(_Command):
    element: Key
    item: Key


class WaiveDocuments(_Command):
    note: Text
    element: Key | None = None


class ReviewDocument(_Command):
    """Accept or reject one document the machine sent to a person (``needs_review``)."""

    document_id: Line
    decision: Literal["accept", "reject"]
    note: Text | None = Field(default=None, description="Required to reject: the client sees it")
    element: Key | None = None

    @model_validator(mode="after")
    def _reject_needs_note(self) -> ReviewDocument:
        if self.decision == "reject" and not self.note:
            raise ValueError("a rejection needs a note: it tells the client what to fix")
        return self


class SendBackCmd(_Command):
    to_stage: Key
    reason: Text


class AcknowledgeEscalation(_Command):
    """Someone has taken the escalated case in hand (the current level)."""

    note: Text | None = None


class AssignWork(_Command):
    """Take, assign, reassign or release the case or one of its current elements.

    ``assignee`` None puts the work back in its team's queue. Moving work someone holds
    needs a ``reason``. ``assignee_team`` is the assignee's role, filled by the API from the
    console user directory; the workflow checks it against the stage's access.
    """

    element: Key | None = Field(default=None, description="None: the case itself")
    assignee: Actor | None = None
    assignee_team: Line | None = None
    reason: Text | None = None
    if_held_by: Actor | None = Field(
        default=None, description="Only if the work is still held by this person (rebalancing)"
    )
    via: Literal["person", "rebalancing"] = "person"


class ReopenCase(_Command):
    to_stage: Key | None = Field(default=None, description="Default: the last stage")
    reason: Text


class CancelCaseCmd(_Command):
    closure_code: Key
    reason: Text | None = None


class ProposalResponse(_Command):
    """The client's answer to a proposed outcome (portal or email link)."""

    accept: bool
    reason: Text | None = None

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> ProposalResponse:
        if not self.accept and self.reason is None:
            raise ValueError("tell us why you do not accept, so we can put it right")
        return self


class ClientMessage(_Command):
    text: Text
    channel: Literal["portal", "email", "sms"] = Field(
        default="portal", description="How it reached us (an emailed or texted reply)"
    )


class Feedback(_Command):
    """CSAT 1 to 5 and/or NPS 0 to 10 from the client."""

    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: Text | None = None

    @model_validator(mode="after")
    def _something(self) -> Feedback:
        if self.csat is None and self.nps is None:
            raise ValueError("give a csat or an nps score")
        return self


class DocumentsUploaded(BaseModel):
    """Signal (fire-and-forget): the client uploaded documents; verification runs next."""

    actor: str = "client"
    document_ids: list[str] = Field(default_factory=list, max_length=50)


class CommandResult(BaseModel):
    """What an update returns: where the case is right after the command was applied."""

    case_ref: str
    stage: str
    status: str
    message: str
