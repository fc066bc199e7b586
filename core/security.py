"""Passwords for console users and the client portal's per-case link tokens.

Portal tokens are stateless: ``<ref>.<expiry>.<hmac>`` in URL-safe base64, signed with the
portal secret. A token names exactly one case and expires; it is never accepted as an API key
or a console session, so it cannot reach another case or any console route.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PBKDF2_ITERATIONS = 240_000


def hash_password(password: str, *, salt: str | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hex>``: the format CONSOLE_USERS expects."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check against a stored hash."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


class InvalidPortalToken(Exception):
    """Unknown, tampered or expired portal link."""


@dataclass(frozen=True)
class PortalGrant:
    case_ref: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def mint_portal_token(case_ref: str, *, secret: str, ttl: timedelta, now: datetime) -> str:
    """A link token for one case, valid for ``ttl``."""
    expires = int((now + ttl).timestamp())
    payload = f"{_b64(case_ref.encode())}.{expires}"
    return f"{payload}.{_sign(secret, payload)}"


def read_portal_token(token: str, *, secret: str, now: datetime | None = None) -> PortalGrant:
    """The case a token grants, or ``InvalidPortalToken``. Never says which check failed."""
    try:
        ref_part, expires_part, signature = token.split(".")
        payload = f"{ref_part}.{expires_part}"
        if not hmac.compare_digest(signature, _sign(secret, payload)):
            raise InvalidPortalToken("bad signature")
        expires_at = datetime.fromtimestamp(int(expires_part), tz=UTC)
        case_ref = _unb64(ref_part).decode()
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidPortalToken("malformed") from e
    if (now or datetime.now(UTC)) >= expires_at:
        raise InvalidPortalToken("expired")
    return PortalGrant(case_ref=case_ref, expires_at=expires_at)
