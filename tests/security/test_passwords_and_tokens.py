"""Console passwords (argon2id; older pbkdf2 hashes upgraded in Postgres at sign-in) and the
portal's link tokens (itsdangerous; legacy links accepted until they expire).

Sign-in goes through the real ``POST /console/login`` over real Postgres; the login route
needs no Temporal, so the app gets none."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from pydantic import SecretStr
from sqlalchemy import delete, select, update

from core.security import (
    InvalidPortalToken,
    Pbkdf2Sha256Hasher,
    check_password,
    hash_fingerprint,
    hash_password,
    mint_portal_token,
    read_portal_token,
    verify_and_update,
)
from core.settings import DEV_CONSOLE_PASSWORD, AppEnv, ConsoleUser, Role, Settings
from store.db import SessionFactory
from store.models import ConsoleCredential
from tests.conftest import test_settings
from tests.web.conftest import build_app, client_for, csrf_from

OLD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tr0ub4dor & 3, but longer"
SECRET = "portal-secret-for-tests-" + "ab" * 16
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------- hashing
def test_a_new_hash_is_argon2id_and_verifies() -> None:
    stored = hash_password(OLD_PASSWORD)
    assert stored.startswith("$argon2id$")
    assert check_password(OLD_PASSWORD, stored)
    assert not check_password(NEW_PASSWORD, stored)
    assert hash_password(OLD_PASSWORD) != stored  # a fresh salt every time
    assert verify_and_update(OLD_PASSWORD, stored) == (True, None)  # current: no update


def test_a_pbkdf2_hash_verifies_and_asks_for_argon2() -> None:
    legacy = Pbkdf2Sha256Hasher().hash(OLD_PASSWORD, salt=b"0123abcd")
    assert legacy.startswith("pbkdf2_sha256$240000$0123abcd$")
    assert check_password(OLD_PASSWORD, legacy)
    assert verify_and_update(NEW_PASSWORD, legacy) == (False, None)
    matches, replacement = verify_and_update(OLD_PASSWORD, legacy)
    assert matches
    assert replacement is not None and replacement.startswith("$argon2id$")
    assert check_password(OLD_PASSWORD, replacement)


@pytest.mark.parametrize("stored", ["", "garbage", "pbkdf2_sha256$x$salt$00", "md5$abc"])
def test_an_unrecognised_hash_never_matches(stored: str) -> None:
    assert verify_and_update(OLD_PASSWORD, stored) == (False, None)


def test_a_pbkdf2_hash_of_the_dev_password_still_counts_as_a_dev_default() -> None:
    legacy = Pbkdf2Sha256Hasher().hash(DEV_CONSOLE_PASSWORD)
    settings = test_settings(
        console_users={
            "old": ConsoleUser(name="Old", role=Role.OPERATOR, password_hash=SecretStr(legacy))
        }
    )
    assert settings.app_env is AppEnv.DEVELOPMENT
    assert "CONSOLE_USERS" in settings.dev_defaults_in_use()


# ------------------------------------------------------------------ upgrade at sign-in
def settings_with(username: str, password_hash: str) -> Settings:
    user = ConsoleUser(
        name="Lee Gacy", role=Role.CASE_MANAGER, password_hash=SecretStr(password_hash)
    )
    return test_settings(console_users={username: user})


SignIn = Callable[[Settings, str, str], Any]


@pytest.fixture
async def sign_in_as(sessions: SessionFactory) -> AsyncIterator[SignIn]:
    """``await sign_in_as(settings, username, password)``: the login form's response, from a
    fresh browser on an app built with ``settings`` (so a test can change CONSOLE_USERS)."""
    clients: list[httpx.AsyncClient] = []

    async def attempt(settings: Settings, username: str, password: str) -> httpx.Response:
        client = client_for(build_app(settings, sessions, temporal=None))
        clients.append(client)
        page = await client.get("/console/login")
        assert page.status_code == 200
        return await client.post(
            "/console/login",
            data={
                "csrf_token": csrf_from(page.text),
                "username": username,
                "password": password,
                "next": "/console",
            },
        )

    yield attempt
    for client in clients:
        await client.aclose()


@pytest.fixture
async def username(sessions: SessionFactory) -> AsyncIterator[str]:
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    yield name
    async with sessions() as s:
        await s.execute(delete(ConsoleCredential).where(ConsoleCredential.username == name))
        await s.commit()


async def credential_row(sessions: SessionFactory, username: str) -> ConsoleCredential | None:
    async with sessions() as s:
        return await s.scalar(
            select(ConsoleCredential).where(ConsoleCredential.username == username)
        )


def signed_in(response: httpx.Response) -> bool:
    if response.status_code == 303:
        assert response.headers["location"] == "/console"
        return True
    assert response.status_code == 401, response.text
    assert "Unknown username or password." in response.text
    return False


async def test_an_old_pbkdf2_hash_is_upgraded_at_sign_in_and_used_next_time(
    sessions: SessionFactory, sign_in_as: SignIn, username: str
) -> None:
    legacy = Pbkdf2Sha256Hasher().hash(OLD_PASSWORD)
    settings = settings_with(username, legacy)

    assert not signed_in(await sign_in_as(settings, username, NEW_PASSWORD))
    assert await credential_row(sessions, username) is None  # a wrong password upgrades nothing

    assert signed_in(await sign_in_as(settings, username, OLD_PASSWORD))
    row = await credential_row(sessions, username)
    assert row is not None
    assert row.password_hash.startswith("$argon2id$")
    assert check_password(OLD_PASSWORD, row.password_hash)
    assert row.source_fingerprint == hashlib.sha256(legacy.encode()).hexdigest()
    assert row.source_fingerprint == hash_fingerprint(legacy)
    first = (row.password_hash, row.updated_at)

    # the next sign-in checks the stored argon2 hash and needs no further upgrade
    assert signed_in(await sign_in_as(settings, username, OLD_PASSWORD))
    again = await credential_row(sessions, username)
    assert again is not None
    assert (again.password_hash, again.updated_at) == first

    # proof that the row is what gets checked: give it another password's hash
    async with sessions() as s:
        await s.execute(
            update(ConsoleCredential)
            .where(ConsoleCredential.username == username)
            .values(password_hash=hash_password(NEW_PASSWORD))
        )
        await s.commit()
    assert signed_in(await sign_in_as(settings, username, NEW_PASSWORD))
    assert not signed_in(await sign_in_as(settings, username, OLD_PASSWORD))


async def test_a_new_configured_hash_overrides_the_upgraded_row(
    sessions: SessionFactory, sign_in_as: SignIn, username: str
) -> None:
    legacy = Pbkdf2Sha256Hasher().hash(OLD_PASSWORD)
    assert signed_in(await sign_in_as(settings_with(username, legacy), username, OLD_PASSWORD))
    upgraded = await credential_row(sessions, username)
    assert upgraded is not None

    # an admin sets a new argon2 hash in CONSOLE_USERS: the old row no longer counts
    reset = settings_with(username, hash_password(NEW_PASSWORD))
    assert not signed_in(await sign_in_as(reset, username, OLD_PASSWORD))
    assert signed_in(await sign_in_as(reset, username, NEW_PASSWORD))
    untouched = await credential_row(sessions, username)
    assert untouched is not None  # nothing to upgrade: the stale row stays, ignored
    assert untouched.source_fingerprint == hash_fingerprint(legacy)

    # ... or a new pbkdf2 hash: that one wins, and is upgraded in turn
    newer_legacy = Pbkdf2Sha256Hasher().hash(NEW_PASSWORD)
    reset_again = settings_with(username, newer_legacy)
    assert not signed_in(await sign_in_as(reset_again, username, OLD_PASSWORD))
    assert signed_in(await sign_in_as(reset_again, username, NEW_PASSWORD))
    replaced = await credential_row(sessions, username)
    assert replaced is not None
    assert replaced.source_fingerprint == hash_fingerprint(newer_legacy)
    assert replaced.password_hash != upgraded.password_hash
    assert check_password(NEW_PASSWORD, replaced.password_hash)
    assert not check_password(OLD_PASSWORD, replaced.password_hash)


async def test_an_unknown_user_is_refused_and_leaves_no_row(
    sessions: SessionFactory, sign_in_as: SignIn, username: str
) -> None:
    settings = settings_with(username, Pbkdf2Sha256Hasher().hash(OLD_PASSWORD))
    assert not signed_in(await sign_in_as(settings, username + "-nobody", OLD_PASSWORD))
    assert await credential_row(sessions, username + "-nobody") is None
    assert await credential_row(sessions, username) is None


# -------------------------------------------------------------------------- portal tokens
def mint_legacy_token(case_ref: str, *, secret: str, ttl: timedelta, now: datetime) -> str:
    """The minting ``core.security`` used before itsdangerous: ``<b64 ref>.<expiry>.<hmac>``."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    expires = int((now + ttl).timestamp())
    payload = f"{b64(case_ref.encode())}.{expires}"
    signature = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def refused(token: str, *, secret: str = SECRET, now: datetime = NOW) -> bool:
    try:
        read_portal_token(token, secret=secret, now=now)
    except InvalidPortalToken:
        return True
    return False


def test_a_portal_token_round_trips_to_its_one_case() -> None:
    token = mint_portal_token("ONB-2026-000123", secret=SECRET, ttl=timedelta(days=30), now=NOW)
    assert token.count(".") == 1  # itsdangerous: <payload>.<signature>
    grant = read_portal_token(token, secret=SECRET, now=NOW + timedelta(days=29))
    assert grant.case_ref == "ONB-2026-000123"
    assert grant.expires_at == NOW + timedelta(days=30)
    # the ref is signed, not hidden, but the link names exactly one case
    other = mint_portal_token("ONB-2026-000124", secret=SECRET, ttl=timedelta(days=30), now=NOW)
    assert read_portal_token(other, secret=SECRET, now=NOW).case_ref == "ONB-2026-000124"


def test_tampered_expired_and_foreign_portal_tokens_are_refused() -> None:
    ttl = timedelta(days=30)
    token = mint_portal_token("ONB-2026-000123", secret=SECRET, ttl=ttl, now=NOW)
    payload, signature = token.split(".")

    # another case's payload under this token's signature
    swapped = mint_portal_token("ONB-2026-999999", secret=SECRET, ttl=ttl, now=NOW)
    assert refused(f"{swapped.split('.')[0]}.{signature}")
    # a longer life under the same signature
    stretched = mint_portal_token("ONB-2026-000123", secret=SECRET, ttl=ttl * 10, now=NOW)
    assert refused(f"{stretched.split('.')[0]}.{signature}")
    # a flipped signature character
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert refused(f"{payload}.{flipped}")
    # expired: at its expiry and after
    assert refused(token, now=NOW + ttl)
    assert refused(token, now=NOW + ttl + timedelta(seconds=1))
    # signed with another secret
    assert refused(token, secret="another-" + SECRET)
    assert refused(mint_portal_token("ONB-2026-000123", secret="x" * 40, ttl=ttl, now=NOW))
    # same secret, but signed for another purpose (another itsdangerous salt)
    elsewhere = URLSafeSerializer(SECRET, salt="something-else").dumps(
        {"ref": "ONB-2026-000123", "exp": int((NOW + ttl).timestamp())}
    )
    assert refused(elsewhere)
    # correctly signed but not the shape a portal token has
    odd = URLSafeSerializer(
        SECRET, salt="portal-link", signer_kwargs={"digest_method": hashlib.sha256}
    )
    assert refused(odd.dumps(["ONB-2026-000123", 1]))
    assert refused(odd.dumps({"ref": "ONB-2026-000123", "exp": "never"}))
    assert not refused(odd.dumps({"ref": "ONB-2026-000123", "exp": 2_000_000_000}))
    for junk in ("", ".", "..", "a.b.c", "not-a-token", token + "."):
        assert refused(junk)


def test_the_refusal_never_says_which_check_failed() -> None:
    token = mint_portal_token("ONB-2026-000123", secret=SECRET, ttl=timedelta(days=1), now=NOW)
    with pytest.raises(InvalidPortalToken) as expired:
        read_portal_token(token, secret=SECRET, now=NOW + timedelta(days=2))
    with pytest.raises(InvalidPortalToken) as forged:
        read_portal_token(token, secret="wrong", now=NOW)
    assert type(expired.value) is type(forged.value) is InvalidPortalToken


def test_a_legacy_token_from_an_old_email_is_accepted_until_it_expires() -> None:
    ttl = timedelta(days=30)
    legacy = mint_legacy_token("ONB-2026-000777", secret=SECRET, ttl=ttl, now=NOW)
    assert legacy.count(".") == 2
    grant = read_portal_token(legacy, secret=SECRET, now=NOW + timedelta(days=29))
    assert grant.case_ref == "ONB-2026-000777"
    assert grant.expires_at == NOW + ttl
    assert refused(legacy, now=NOW + ttl)  # expired
    assert refused(legacy, secret="another-" + SECRET)
    ref_part, expires_part, signature = legacy.split(".")
    assert refused(f"{ref_part}.{int(expires_part) + 86_400}.{signature}")  # stretched
    other_ref = base64.urlsafe_b64encode(b"ONB-2026-000778").rstrip(b"=").decode()
    assert refused(f"{other_ref}.{expires_part}.{signature}")  # another case
