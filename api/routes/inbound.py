"""Inbound email (SendGrid Inbound Parse) and the quarantine of messages from strangers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["inbound"])
