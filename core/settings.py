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

from limits import parse as parse_rate_limit
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The seed playbook ships inside the package (playbooks/ is a package), so an installed build
# finds it as well as a checkout does.
DEFAULT_PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "onboarding.yaml"
BUNDLED_SDN = (
    Path(__file__).resolve().parent.parent
    / "integrations"
    / "sanctions"
    / "lists"
    / "ofac_sdn_2021_04"
)
# FATF "call for action" plus a sample of "increased monitoring" jurisdictions. Keep current.
FATF_HIGH_RISK = ["KP", "IR", "MM"]
FATF_INCREASED_MONITORING = [
    "DZ",
    "AO",
    "BG",
    "BF",
    "CM",
    "CI",
    "HR",
    "CD",
    "HT",
    "KE",
    "LA",
    "LB",
    "MC",
    "MZ",
    "NA",
    "NP",
    "NG",
    "ZA",
    "SS",
    "SY",
    "VE",
    "VN",
    "YE",
]


class Role(StrEnum):
    """Who is calling. API keys map to a role; console users have one; admin passes every
    role check."""

    CLIENT_APP = "client_app"
    CASE_MANAGER = "case_manager"
    COMPLIANCE_REVIEWER = "compliance_reviewer"
    RELATIONSHIP_MANAGER = "relationship_manager"
    OPERATOR = "operator"
    ADMIN = "admin"


class ConsoleUser(BaseModel):
    """A person who signs in to the console. ``password_hash`` from
    ``core.security.hash_password`` (argon2id); an older ``pbkdf2_sha256$...`` hash still
    works and is upgraded in Postgres at the user's next sign-in."""

    name: str
    role: Role
    password_hash: SecretStr
    email: str | None = Field(
        default=None,
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Where their own notices go (work assigned to them); else their team's",
    )


DEV_CONSOLE_PASSWORD = "onboarding"  # noqa: S105 - dev only; printed by `make run`
DEV_CONSOLE_USERS: dict[str, tuple[str, Role]] = {
    "maria": ("Maria Case-Manager", Role.CASE_MANAGER),
    "kofi": ("Kofi Case-Manager", Role.CASE_MANAGER),
    "rita": ("Rita Reviewer", Role.COMPLIANCE_REVIEWER),
    "omar": ("Omar Reviewer", Role.COMPLIANCE_REVIEWER),
    "ravi": ("Ravi Relationship-Manager", Role.RELATIONSHIP_MANAGER),
    "olga": ("Olga Operator", Role.OPERATOR),
    "ada": ("Ada Admin", Role.ADMIN),
}


class RebalanceTeam(BaseModel):
    """How rebalancing treats one team (role)."""

    threshold: int = Field(
        default=3, ge=1, le=1000, description="Items at risk one person may hold before moving"
    )
    auto: bool = Field(default=False, description="Move at once; else propose for a person")


class AppEnv(StrEnum):
    """Where the process runs. ``production`` refuses every development default secret."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


DEV_SESSION_SECRET = "dev-session-secret-change-me"  # noqa: S105 - dev only
DEV_PORTAL_SECRET = "dev-portal-secret-change-me"  # noqa: S105 - dev only
DEV_WEBHOOK_SECRET = "dev-webhook-secret"  # noqa: S105 - dev only
DEV_INBOUND_EMAIL_TOKEN = "dev-inbound-token"  # noqa: S105 - dev only
DEV_INBOUND_EMAIL_PASSWORD = "dev-inbound-password"  # noqa: S105 - dev only

DEV_API_KEYS: dict[str, Role] = {
    "dev-client-app-key": Role.CLIENT_APP,
    "dev-case-manager-key": Role.CASE_MANAGER,
    "dev-operator-key": Role.OPERATOR,
}


class Settings(BaseSettings):
    """Process configuration, read from env (case-insensitive) with dev defaults."""

    # hide_input_in_errors: a refused value (a secret, perhaps) never shows in the error
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, hide_input_in_errors=True
    )

    app_env: AppEnv = Field(
        default=AppEnv.DEVELOPMENT,
        description="development | test | production. production refuses dev secrets.",
    )

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=lambda: Path.cwd() / ".data", description="Embedded stack state."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL. Unset: the embedded Postgres under data_dir.",
    )
    db_pool_size: int = Field(
        default=10, ge=1, le=200, description="Postgres connections each process keeps open"
    )
    db_max_overflow: int = Field(
        default=10, ge=0, le=200, description="Extra connections a busy process may open"
    )
    db_pool_pre_ping: bool = Field(
        default=True,
        description="Check each pooled connection before use (a round trip per checkout)",
    )
    playbook_path: Path = DEFAULT_PLAYBOOK
    case_type_dirs_extra: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="More folders of case type YAML, after playbooks/case_types "
        "(comma-separated or a JSON list)",
    )
    blob_dir: Path | None = Field(default=None, description="Uploads; default data_dir/blobs")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # reading uploaded documents in the worker (integrations/documents): caps per document
    document_read_max_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Larger files are not read: needs_review"
    )
    document_read_max_pages: int = Field(
        default=20, ge=1, le=1000, description="PDFs with more pages are not read: needs_review"
    )
    document_read_max_pixels: int = Field(
        default=40_000_000, ge=100_000, description="Larger images are not decoded: needs_review"
    )
    document_read_timeout_seconds: float = Field(
        default=12.0,
        gt=0,
        le=600,
        description="Reading one document (PDF text, OCR) may take this long; then "
        "needs_review. Two documents must fit in the verify activity's 30 s",
    )
    document_read_threads: int = Field(
        default=2, ge=1, le=32, description="Reader threads per worker process (OCR is CPU-bound)"
    )

    # --- compliance ---------------------------------------------------------------------
    sanctions_sdn_path: Path | None = BUNDLED_SDN / "sdn.csv"
    sanctions_alt_path: Path | None = BUNDLED_SDN / "alt.csv"
    sanctions_opensanctions_path: Path | None = None
    sanctions_threshold: float = Field(default=85.0, ge=0, le=100)
    # sanctions monitoring (docs/sanctions-monitoring.md)
    sanctions_watch_dir: Path | None = Field(
        default=None,
        description="A folder the sanctions-list-watch schedule checks for new lists "
        "(sdn.csv, alt.csv, targets.simple.csv). Unset (and no URL): no schedule",
    )
    sanctions_watch_url: str | None = Field(
        default=None,
        max_length=2000,
        description="URL(s) of list files the schedule downloads and checks, comma-separated",
    )
    sanctions_watch_every_hours: int = Field(default=24, ge=1, le=24 * 31)
    sanctions_rescreen_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Clients screened per re-screen batch"
    )
    sanctions_rescreen_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Processes that screen a re-screen batch, each with its own index "
        "(integrations/sanctions/pool.py): 0 = one per physical core within the CPU limit; "
        "1 = in the worker process",
    )
    high_risk_countries: list[str] = Field(default_factory=lambda: list(FATF_HIGH_RISK))
    increased_monitoring_countries: list[str] = Field(
        default_factory=lambda: list(FATF_INCREASED_MONITORING)
    )

    # --- outbound webhooks ------------------------------------------------------------------
    webhook_url: str | None = Field(default=None, description="Unset: webhooks are skipped")
    webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)

    # --- payload encryption (core/codec.py) -------------------------------------------------
    payload_keys: SecretStr | None = Field(
        default=None,
        description="id:base64key,... (AES-256, newest first): Temporal payloads are "
        "encrypted with the first and decrypted with any. Unset: plaintext (make run "
        "generates a dev key under DATA_DIR; production refuses to start without one)",
    )

    # --- notifications ----------------------------------------------------------------------
    sendgrid_api_key: SecretStr | None = None
    sendgrid_host: str | None = Field(default=None, description="Override for tests only")
    email_from: str = "onboarding@example.com"
    email_from_name: str = "Client Onboarding"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_base_url: str | None = Field(default=None, description="Override for tests only")

    # --- two-way channels (inbound email, provider events and callbacks) -------------------
    sendgrid_event_public_key: str | None = Field(
        default=None,
        max_length=2000,
        description="SendGrid Event Webhook verification key (base64 ECDSA public key). "
        "Unset: the event endpoint refuses every post (403)",
    )
    inbound_email_token: SecretStr = Field(
        default=SecretStr(DEV_INBOUND_EMAIL_TOKEN),
        description="Secret path segment of the Inbound Parse URL: /inbound/email/<token>",
    )
    inbound_email_user: str = Field(default="sendgrid", max_length=120)
    inbound_email_password: SecretStr = Field(
        default=SecretStr(DEV_INBOUND_EMAIL_PASSWORD),
        description="Basic auth password SendGrid sends with Inbound Parse posts",
    )
    inbound_max_attachments: int = Field(default=10, ge=0, le=50)
    inbound_reply_domain: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
        description="The Inbound Parse domain: client emails get Reply-To "
        "cases+<ref>@<domain>, so replies come back to the case. Unset: no Reply-To",
    )
    twilio_webhook_base_url: str | None = Field(
        default=None,
        max_length=500,
        description="The public base URL Twilio calls (status callbacks, inbound SMS); "
        "signatures are checked against it. Unset: this API's own address",
    )
    sendgrid_reconcile_after_seconds: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="After a send lost its answer, how long SendGrid's activity log may lag "
        "before a message it does not list is sent again",
    )
    twilio_reconcile_after_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="The same for Twilio's message list (listed at once; this covers skew)",
    )
    staff_directory: dict[str, str] = Field(
        default_factory=lambda: {
            "onboarding_team": "onboarding-team@example.com",
            "onboarding_lead": "onboarding-lead@example.com",
            "compliance_reviewer": "compliance@example.com",
            "compliance_lead": "compliance-lead@example.com",
            "operations": "operations@example.com",
            "operations_lead": "operations-lead@example.com",
            "security_reviewer": "security@example.com",
            "security_lead": "security-lead@example.com",
            "relationship_manager": "relationship-managers@example.com",
            "head_of_operations": "head-of-operations@example.com",
            # roles the shipped engine case types name beyond onboarding's
            "case_manager": "case-managers@example.com",
            "store_manager": "store-managers@example.com",
            "sales_manager": "sales-managers@example.com",
            "finance_approver": "finance-approvals@example.com",
            "admin": "case-admins@example.com",
        },
        description="Role -> address for internal SLA notices (JSON object in env)",
    )
    portal_base_url: str = Field(
        default="",
        description="Base of the client portal links in messages. Empty: this API's own "
        "address, http://<API_HOST>:<API_PORT>/portal (127.0.0.1 for a wildcard host)",
    )

    # --- work queues and rebalancing ------------------------------------------------------
    rebalance_every_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="How often the rebalancing schedule runs"
    )
    eta_refit_every_days: int = Field(
        default=7, ge=1, le=365, description="How often the ETA model is learned again"
    )
    dashboard_rollup_every_minutes: int = Field(
        default=60,
        ge=1,
        le=24 * 60,
        description="How often the dashboard's daily roll-up is refreshed (docs/dashboard.md)",
    )
    rebalance_teams: Annotated[dict[str, RebalanceTeam], NoDecode] = Field(
        default_factory=dict,
        description='Per team (role): JSON {"case_manager": {"threshold": 3, "auto": true}}. '
        "Teams not listed: threshold 3, proposals only",
    )

    # --- console and portal -------------------------------------------------------------
    console_users: Annotated[dict[str, ConsoleUser], NoDecode] = Field(
        default_factory=lambda: _dev_console_users(),
        description='JSON {"<username>": {"name", "role", "password_hash"}}. Dev users only.',
    )
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    session_max_age_seconds: int = 8 * 3600
    portal_secret: SecretStr = SecretStr(DEV_PORTAL_SECRET)
    portal_link_ttl_days: int = Field(default=30, ge=1, le=365)
    console_base_url: str = Field(
        default="",
        description="Base of console links in internal notices. Empty: "
        "http://<API_HOST>:<API_PORT>/console",
    )

    # --- throttling (per client address; "<count>/<second|minute|hour>") ----------------
    login_failures_per_user: str = Field(
        default="5/minute", description="Failed console sign-ins per username + address"
    )
    login_failures_per_address: str = Field(
        default="20/minute", description="Failed console sign-ins per address, any username"
    )
    portal_requests_per_token: str = Field(
        default="60/minute", description="Portal requests per portal link"
    )
    portal_requests_per_address: str = Field(
        default="300/minute", description="Portal requests per address, any link"
    )
    rate_limit_storage: str = Field(
        default="async+memory://",
        max_length=500,
        description="Where the counters live (a `limits` async storage URI). The default "
        "counts per API process; with several replicas use a shared one, e.g. "
        "async+redis://host:6379 (install coredis)",
    )

    # --- Temporal (address/namespace/TLS/API key are read by temporalio.envconfig) -----
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "onboarding"
    temporal_ui_url: str = "http://localhost:8233"

    # --- worker tuning (bench/scale_bench.py; docs/BENCHMARKS.md "Scale") ---------------
    worker_max_cached_workflows: int = Field(
        default=3_000,
        ge=0,
        description="Workflow runs a worker keeps in memory (about 250 KB each for a waiting "
        "case). A task for a run not kept replays its whole history first; 3,000 keeps a "
        "worker under 1 GB",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100,
        ge=2,
        description="Workflow tasks in hand at once (a task waiting on a local activity "
        "holds one): too few and the worker stops polling, so timers are picked up late",
    )
    worker_max_concurrent_activities: int = Field(
        default=8,
        ge=1,
        description="Activities at once; they share the worker's event loop with workflow "
        "tasks, so more only queues them there",
    )
    worker_max_concurrent_local_activities: int = Field(default=8, ge=1)
    worker_max_concurrent_workflow_task_polls: int = Field(
        default=16,
        ge=2,
        description="Long polls for workflow tasks: a fifth on the task queue (new cases), "
        "the rest on this worker's sticky queue (cases it holds)",
    )
    worker_max_concurrent_activity_task_polls: int = Field(default=4, ge=1)
    worker_sticky_queue_schedule_to_start_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a task waits on this worker's sticky queue before the server "
        "hands it to any worker (which then replays the history). Long, because a busy "
        "worker's timer tasks that fall back queue behind every new case (docs/BENCHMARKS.md, "
        "Scale); a dead worker's tasks move sooner, once the server sees its sticky queue "
        "has no poller",
    )

    # --- observability (docs/observability.md; tracing is configured by OTEL_* variables) --
    worker_metrics_address: str = Field(
        default="",
        max_length=200,
        pattern=r"^$|^[^\s:]*:\d{1,5}$",
        description="host:port of the worker's Prometheus endpoint (SDK and application "
        "metrics at /metrics), e.g. 0.0.0.0:9464. Empty: no endpoint",
    )

    # --- API -----------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: Annotated[dict[str, Role], NoDecode] = Field(
        default_factory=lambda: dict(DEV_API_KEYS),
        description='JSON object {"<key>": "<role>"}. Defaults are dev keys only.',
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="If set, GET /metrics needs `Authorization: Bearer <token>` (for an API "
        "reachable from outside). Unset: /metrics is open, like the health probes",
    )

    # --- embedded dev stack ports ----------------------------------------------------
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    @field_validator("console_users", "rebalance_teams", mode="before")
    @classmethod
    def _parse_console_users(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @field_validator(
        "login_failures_per_user",
        "login_failures_per_address",
        "portal_requests_per_token",
        "portal_requests_per_address",
    )
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate_limit(value)  # ValueError for anything but "<count>/<period>"
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _check_rate_storage(cls, value: str) -> str:
        if not value.startswith("async+"):
            raise ValueError(
                "must be an async storage URI of the limits package, e.g. async+memory://"
            )
        return value

    @field_validator("case_type_dirs_extra", mode="before")
    @classmethod
    def _parse_dirs(cls, value: Any) -> Any:
        """``a,b`` or ``["a", "b"]`` from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        """Accept a JSON object from the environment."""
        if isinstance(value, str):
            return json.loads(value)
        return value

    @model_validator(mode="after")
    def _links_follow_the_api(self) -> Settings:
        """Portal and console links default to this API's own address, so an API on another
        port (API_PORT) does not send clients to port 8000."""
        host = self.api_host.strip() or "127.0.0.1"
        if host in ("0.0.0.0", "::", "*"):  # noqa: S104 - a wildcard bind, not a link host
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        origin = f"http://{host}:{self.api_port}"
        if not self.portal_base_url.strip():
            self.portal_base_url = f"{origin}/portal"
        if not self.console_base_url.strip():
            self.console_base_url = f"{origin}/console"
        return self

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        """APP_ENV=production with any development default is an error naming each setting
        (never its value), so no process (API, worker, CLI) starts with a known secret."""
        if self.app_env is AppEnv.PRODUCTION and (offending := self.dev_defaults_in_use()):
            raise ValueError(
                "APP_ENV=production refuses development defaults; set real values for: "
                + ", ".join(offending)
            )
        return self

    def dev_defaults_in_use(self) -> list[str]:
        """The env names of settings still at a development default (secrets only)."""
        from core.security import check_password

        offending: list[str] = []
        if self.uses_dev_api_keys:
            offending.append("API_KEYS")
        for name, dev in (
            ("SESSION_SECRET", DEV_SESSION_SECRET),
            ("PORTAL_SECRET", DEV_PORTAL_SECRET),
            ("WEBHOOK_SECRET", DEV_WEBHOOK_SECRET),
            ("INBOUND_EMAIL_TOKEN", DEV_INBOUND_EMAIL_TOKEN),
            ("INBOUND_EMAIL_PASSWORD", DEV_INBOUND_EMAIL_PASSWORD),
        ):
            secret: SecretStr = getattr(self, name.lower())
            if secret.get_secret_value() == dev:
                offending.append(name)
        hashes = {user.password_hash.get_secret_value() for user in self.console_users.values()}
        # the dev users, or anyone whose password is the dev one (each distinct hash once:
        # argon2 is slow on purpose, and the dev users share one hash)
        if any(check_password(DEV_CONSOLE_PASSWORD, stored) for stored in hashes):
            offending.append("CONSOLE_USERS")
        if self.payload_keys is None:  # client PII would sit in Temporal history in clear
            offending.append("PAYLOAD_KEYS")
        return offending

    def __repr_args__(self) -> Any:
        """Mask API keys too: they are secrets even though they are dict keys."""
        for name, value in super().__repr_args__():
            if name == "api_keys":
                yield name, {"***": sorted(set(self.api_keys.values()))}
            else:
                yield name, value

    def known_roles(self) -> set[str]:
        """Roles a case type may name: the API roles plus every role with a staff address
        (escalations and staff notices go to those addresses)."""
        return {r.value for r in Role} | set(self.staff_directory)

    def rebalance_team(self, team: str) -> RebalanceTeam:
        return self.rebalance_teams.get(team) or RebalanceTeam()

    def person_directory(self) -> dict[str, str]:
        """``person:<username>`` -> address, for console users with an address of their own
        (staff notices to one person; the rest reach their team's address)."""
        return {
            f"person:{username}": user.email
            for username, user in self.console_users.items()
            if user.email
        }

    @property
    def uses_dev_api_keys(self) -> bool:
        """True when any built-in dev key is accepted: fine locally, never in production."""
        return any(key in DEV_API_KEYS for key in self.api_keys)


@lru_cache(maxsize=1)
def _dev_password_hash() -> str:
    from core.security import hash_password

    # one random salt per process, shared by every dev user
    return hash_password(DEV_CONSOLE_PASSWORD)


def _dev_console_users() -> dict[str, ConsoleUser]:
    return {
        username: ConsoleUser(name=name, role=role, password_hash=SecretStr(_dev_password_hash()))
        for username, (name, role) in DEV_CONSOLE_USERS.items()
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
