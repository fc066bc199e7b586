"""Notification requests from the workflow, and what became of them per channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.enums import Channel


class Recipient(BaseModel):
    name: str
    email: str | None = None
    phone: str | None = None
    time_zone: str | None = None  # IANA; dates and times in the message are given in it


class NotifyInput(BaseModel):
    """One milestone message to one client (or one staff role)."""

    case_ref: str
    milestone: str = Field(description="a notifications.milestones.Milestone value")
    context: dict[str, Any] = Field(description="validated by the milestone's context model")
    recipient: Recipient
    channels: list[Channel] = Field(description="the client's channels, in preference order")
    urgent: bool = False
    audience: str = Field(default="client", description="client | staff")
    occurrence: int = Field(
        default=1, description="bumps the outbox key when a milestone may legitimately repeat"
    )
    contact_id: int | None = Field(
        default=None, description="An additional contact's copy of a client message"
    )


class FallbackInput(BaseModel):
    """A message the provider gave up on after accepting it (bounce, drop, undelivered):
    send it on the recipient's next channel."""

    outbox_key: str = Field(max_length=200)
    reason: str = Field(max_length=500)


class FallbackResult(BaseModel):
    sent_on: str | None = Field(default=None, description="The channel used, if any")
    detail: str


class ChannelResult(BaseModel):
    channel: Channel
    status: str = Field(description="sent | local_outbox | failed | fallback | recorded")
    provider_message_id: str | None = None
    detail: str | None = None


class NotifyResult(BaseModel):
    results: list[ChannelResult] = Field(default_factory=list)


class CallbackRequest(BaseModel):
    """A phone callback the relationship manager owes a client at a stage."""

    case_ref: str
    stage: str
    due_at: datetime
    client_name: str
    phone: str | None = None
