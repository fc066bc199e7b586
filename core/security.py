"""Passwords for console users and the client portal's per-case link tokens.

Passwords are argon2id (``pwdlib``). Older ``pbkdf2_sha256$<iterations>$<salt>$<hex>`` hashes
in ``CONSOLE_USERS`` still verify, and ``verify_and_update`` hands back an argon2id
replacement for them (the console stores it at the next sign-in: ``store.console_credentials``).

Portal tokens are stateless: an ``itsdangerous`` URL-safe signed payload naming one case ref
and its expiry, signed with the portal secret (salt ``portal-link``). A token names exactly one
case and expires; it is never accepted as an API key or a console session, so it cannot reach
another case or any console route.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import HasherProtocol, ensure_str, validate_str_or_bytes

PBKDF2_ITERATIONS = 240_000
PBKDF2_PREFIX = "pbkdf2_sha256$"


class Pbkdf2Sha256Hasher(HasherProtocol):
    """The console's original ``pbkdf2_sha256$<iterations>$<salt>$<hex>`` format, as a pwdlib
    hasher: kept so hashes already in ``CONSOLE_USERS`` verify (and get upgraded). New hashes
    are argon2id; this one is never the current hasher."""

    def __init__(self, iterations: int = PBKDF2_ITERATIONS) -> None:
        self.iterations = iterations

    @staticmethod
    def _parts(hash: str | bytes) -> tuple[int, str, str] | None:
        """(iterations, salt, hex digest), or None for anything not in this format."""
        try:
            scheme, iterations, salt, expected = ensure_str(hash).split("$")
        except (UnicodeDecodeError, ValueError):
            return None
        if scheme != "pbkdf2_sha256" or not iterations.isdigit() or int(iterations) < 1:
            return None
        if not salt or not expected:
            return None
        return int(iterations), salt, expected

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        validate_str_or_bytes(hash, "hash")
        return cls._parts(hash) is not None

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        validate_str_or_bytes(password, "password")
        salt_text = salt.decode() if salt is not None else secrets.token_hex(8)
        digest = hashlib.pbkdf2_hmac(
            "sha256", _bytes(password), salt_text.encode(), self.iterations
        )
        return f"pbkdf2_sha256${self.iterations}${salt_text}${digest.hex()}"

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        validate_str_or_bytes(password, "password")
        validate_str_or_bytes(hash, "hash")
        parts = self._parts(hash)
        if parts is None:
            return False
        iterations, salt, expected = parts
        digest = hashlib.pbkdf2_hmac("sha256", _bytes(password), salt.encode(), iterations)
        return hmac.compare_digest(digest.hex().encode(), expected.encode())

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        parts = self._parts(hash)
        return parts is None or parts[0] < self.iterations


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


# The first hasher makes every new hash; the others only verify (and ask for an upgrade).
PASSWORDS = PasswordHash((Argon2Hasher(), Pbkdf2Sha256Hasher()))


def hash_password(password: str) -> str:
    """An argon2id hash (``$argon2id$v=19$m=...``): the format CONSOLE_USERS expects."""
    return PASSWORDS.hash(password)


def verify_and_update(password: str, stored: str) -> tuple[bool, str | None]:
    """(password matches, a replacement hash when ``stored`` is an outdated format or cost).

    Argon2 and pbkdf2 comparisons are constant-time; an unrecognised hash is just a no."""
    try:
        return PASSWORDS.verify_and_update(password, stored)
    except UnknownHashError:
        return False, None


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (argon2id or the older pbkdf2_sha256)."""
    return verify_and_update(password, stored)[0]


def hash_fingerprint(stored: str) -> str:
    """SHA-256 (hex) of a configured hash: names it without storing it again."""
    return hashlib.sha256(stored.encode()).hexdigest()


# ---------------------------------------------------------------------------- portal tokens
class InvalidPortalToken(Exception):
    """Unknown, tampered or expired portal link."""


@dataclass(frozen=True)
class PortalGrant:
    case_ref: str
    expires_at: datetime


PORTAL_SALT = "portal-link"


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(
        secret, salt=PORTAL_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def mint_portal_token(case_ref: str, *, secret: str, ttl: timedelta, now: datetime) -> str:
    """A link token for one case, valid for ``ttl`` from ``now``.

    The expiry is inside the signed payload (not itsdangerous' own timestamp), so whoever
    mints decides the clock, and a token cannot be stretched without breaking its signature.
    """
    expires = int((now + ttl).timestamp())
    return _serializer(secret).dumps({"ref": case_ref, "exp": expires})


def read_portal_token(token: str, *, secret: str, now: datetime | None = None) -> PortalGrant:
    """The case a token grants, or ``InvalidPortalToken``. Never says which check failed.

    Tokens from before the switch to itsdangerous (``<b64 ref>.<expiry>.<hmac>``) are in
    emails already sent, so they are still accepted until their own expiry passes: the
    itsdangerous format is tried first, then the legacy one. Once the longest link TTL
    (``PORTAL_LINK_TTL_DAYS``, at most 365 days) has passed since the switch, no legacy token
    can still be valid and ``_read_legacy_token`` can go.
    """
    try:
        case_ref, expires_at = _read_token(token, secret)
    except InvalidPortalToken:
        case_ref, expires_at = _read_legacy_token(token, secret)
    if (now or datetime.now(UTC)) >= expires_at:
        raise InvalidPortalToken("expired")
    return PortalGrant(case_ref=case_ref, expires_at=expires_at)


def _read_token(token: str, secret: str) -> tuple[str, datetime]:
    try:
        payload: Any = _serializer(secret).loads(token)
    except BadData as e:
        raise InvalidPortalToken("bad signature") from e
    if not isinstance(payload, dict):
        raise InvalidPortalToken("malformed")
    case_ref, expires = payload.get("ref"), payload.get("exp")
    if not isinstance(case_ref, str) or type(expires) is not int:
        raise InvalidPortalToken("malformed")
    try:
        return case_ref, datetime.fromtimestamp(expires, tz=UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise InvalidPortalToken("malformed") from e


# ------------------------------------------------------------- legacy portal tokens (read only)
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _legacy_sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def _read_legacy_token(token: str, secret: str) -> tuple[str, datetime]:
    """``<b64 ref>.<expiry>.<hmac>``: the format minted before itsdangerous. Read only."""
    try:
        ref_part, expires_part, signature = token.split(".")
        payload = f"{ref_part}.{expires_part}"
        if not hmac.compare_digest(signature.encode(), _legacy_sign(secret, payload).encode()):
            raise InvalidPortalToken("bad signature")
        expires_at = datetime.fromtimestamp(int(expires_part), tz=UTC)
        case_ref = _unb64(ref_part).decode()
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as e:
        raise InvalidPortalToken("malformed") from e
    return case_ref, expires_at
