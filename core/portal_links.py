"""Portal links for messages: the worker mints them without importing any web code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from core.security import mint_portal_token
from core.settings import Settings


def make_portal_link(settings: Settings) -> Callable[[str], str]:
    """For ``NotificationActivities(portal_link=...)``: case ref -> a fresh, expiring link."""
    secret = settings.portal_secret.get_secret_value()
    ttl = timedelta(days=settings.portal_link_ttl_days)
    base = settings.portal_base_url.rstrip("/")

    def link(case_ref: str) -> str:
        token = mint_portal_token(case_ref, secret=secret, ttl=ttl, now=datetime.now(UTC))
        return f"{base}/{token}"

    return link
