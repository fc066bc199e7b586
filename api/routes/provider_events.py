"""What providers tell us after a send: SendGrid Event Webhook, Twilio status callbacks and
inbound SMS (consent keywords and replies)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/providers", tags=["providers"])
