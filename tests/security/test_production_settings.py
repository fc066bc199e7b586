"""APP_ENV=production refuses every development default secret, naming the setting (never
its value); development and test run on the defaults."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from core.codec import new_key_entry
from core.security import hash_password
from core.settings import (
    DEV_API_KEYS,
    DEV_CONSOLE_PASSWORD,
    DEV_INBOUND_EMAIL_PASSWORD,
    DEV_INBOUND_EMAIL_TOKEN,
    DEV_PORTAL_SECRET,
    DEV_SESSION_SECRET,
    DEV_WEBHOOK_SECRET,
    AppEnv,
    ConsoleUser,
    Role,
    Settings,
)

DEV_NAMES = [
    "API_KEYS",
    "SESSION_SECRET",
    "PORTAL_SECRET",
    "WEBHOOK_SECRET",
    "INBOUND_EMAIL_TOKEN",
    "INBOUND_EMAIL_PASSWORD",
    "CONSOLE_USERS",
    "PAYLOAD_KEYS",  # unset: payloads would reach Temporal unencrypted
]
DEV_VALUES = [
    *DEV_API_KEYS,
    DEV_SESSION_SECRET,
    DEV_PORTAL_SECRET,
    DEV_WEBHOOK_SECRET,
    DEV_INBOUND_EMAIL_TOKEN,
    DEV_INBOUND_EMAIL_PASSWORD,
]


def real_values() -> dict[str, Any]:
    return {
        "api_keys": {"k-3f9a1c7e5b2d4f60": Role.CLIENT_APP},
        "session_secret": SecretStr("s-" + "a1" * 24),
        "portal_secret": SecretStr("p-" + "b2" * 24),
        "webhook_secret": SecretStr("w-" + "c3" * 24),
        "inbound_email_token": SecretStr("t-" + "e5" * 24),
        "inbound_email_password": SecretStr("i-" + "f6" * 24),
        "payload_keys": SecretStr(new_key_entry("prod-1")),
        "console_users": {
            "jane": ConsoleUser(
                name="Jane Ops",
                role=Role.OPERATOR,
                password_hash=SecretStr(hash_password("correct horse battery staple")),
            )
        },
    }


def test_production_with_dev_defaults_names_every_offending_setting() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, app_env="production")
    message = str(refused.value)
    assert "APP_ENV=production" in message
    for name in DEV_NAMES:
        assert name in message
    for value in DEV_VALUES:
        assert value not in message  # names only, never the secret itself


def test_production_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path every process takes: env vars read by Settings()."""
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SESSION_SECRET", "s-" + "d4" * 24)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    message = str(refused.value)
    assert "SESSION_SECRET" not in message  # that one is real now
    for name in ("API_KEYS", "PORTAL_SECRET", "WEBHOOK_SECRET", "CONSOLE_USERS"):
        assert name in message
    assert "d4d4" not in message


def test_one_leftover_is_enough_to_refuse() -> None:
    values = real_values()
    values["api_keys"] = {**values["api_keys"], "dev-operator-key": Role.OPERATOR}
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, app_env="production", **values)
    message = str(refused.value)
    assert "API_KEYS" in message
    assert "dev-operator-key" not in message
    for name in ("SESSION_SECRET", "PORTAL_SECRET", "WEBHOOK_SECRET", "CONSOLE_USERS"):
        assert name not in message


def test_a_production_user_with_the_dev_password_is_refused() -> None:
    values = real_values()
    values["console_users"] = {
        "jane": ConsoleUser(
            name="Jane Ops",
            role=Role.OPERATOR,
            password_hash=SecretStr(hash_password(DEV_CONSOLE_PASSWORD)),
        )
    }
    with pytest.raises(ValidationError, match="CONSOLE_USERS"):
        Settings(_env_file=None, app_env="production", **values)


def test_production_with_real_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    values = real_values()
    settings = Settings(_env_file=None, app_env="production", **values)
    assert settings.app_env is AppEnv.PRODUCTION
    # and the same values given as environment variables, as a deployment does
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("API_KEYS", json.dumps({"k-3f9a1c7e5b2d4f60": "client_app"}))
    for name in (
        "session_secret",
        "portal_secret",
        "webhook_secret",
        "payload_keys",
        "inbound_email_token",
        "inbound_email_password",
    ):
        monkeypatch.setenv(name.upper(), values[name].get_secret_value())
    users = {
        "jane": {"name": "Jane Ops", "role": "operator", "password_hash": hash_password("x" * 20)}
    }
    monkeypatch.setenv("CONSOLE_USERS", json.dumps(users))
    assert Settings(_env_file=None).app_env is AppEnv.PRODUCTION


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_run_on_the_defaults(env: str) -> None:
    settings = Settings(_env_file=None, app_env=env)
    assert settings.uses_dev_api_keys
    assert settings.dev_defaults_in_use() == DEV_NAMES


def test_default_is_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    assert Settings(_env_file=None).app_env is AppEnv.DEVELOPMENT


def test_unknown_app_env_is_an_error() -> None:
    with pytest.raises(ValidationError, match="app_env"):
        Settings(_env_file=None, app_env="prod")
