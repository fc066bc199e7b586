"""One place for configuration.

Dev defaults work with no environment at all (``make run``); production values come from
environment variables (or a ``.env`` file). Secrets are ``SecretStr`` so they never show in
``repr`` or logs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The seed playbook ships inside the package (playbooks/ is a package), so an installed build
# finds it as well as a checkout does.
DEFAULT_PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "onboarding.yaml"


class Role(StrEnum):
    """Who is calling the API; each API key maps to exactly one role."""

    CLIENT_APP = "client_app"
    CASE_MANAGER = "case_manager"
    OPERATOR = "operator"


DEV_API_KEYS: dict[str, Role] = {
    "dev-client-app-key": Role.CLIENT_APP,
    "dev-case-manager-key": Role.CASE_MANAGER,
    "dev-operator-key": Role.OPERATOR,
}


class Settings(BaseSettings):
    """Process configuration, read from env (case-insensitive) with dev defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=lambda: Path.cwd() / ".data", description="Embedded stack state."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL. Unset: the embedded Postgres under data_dir.",
    )
    playbook_path: Path = DEFAULT_PLAYBOOK
    blob_dir: Path | None = Field(default=None, description="Uploads; default data_dir/blobs")
    sendgrid_api_key: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None

    # --- Temporal (address/namespace/TLS/API key are read by temporalio.envconfig) -----
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "onboarding"
    temporal_ui_url: str = "http://localhost:8233"

    # --- API -----------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: Annotated[dict[str, Role], NoDecode] = Field(
        default_factory=lambda: dict(DEV_API_KEYS),
        description='JSON object {"<key>": "<role>"}. Defaults are dev keys only.',
    )

    # --- embedded dev stack ports ----------------------------------------------------
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        """Accept a JSON object from the environment."""
        if isinstance(value, str):
            return json.loads(value)
        return value

    def __repr_args__(self) -> Any:
        """Mask API keys too: they are secrets even though they are dict keys."""
        for name, value in super().__repr_args__():
            if name == "api_keys":
                yield name, {"***": sorted(set(self.api_keys.values()))}
            else:
                yield name, value

    @property
    def uses_dev_api_keys(self) -> bool:
        """True when any built-in dev key is accepted: fine locally, never in production."""
        return any(key in DEV_API_KEYS for key in self.api_keys)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
