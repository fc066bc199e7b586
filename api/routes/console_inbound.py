"""Console: the quarantine of inbound messages (review, attach to a case, dismiss)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/console", include_in_schema=False)
