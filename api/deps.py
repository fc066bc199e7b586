"""FastAPI dependencies: the DB session, the Temporal client and the caller's role."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from core.settings import Role, Settings
from playbooks.registry import CaseTypeRegistry

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def load_case_types(settings: Settings) -> CaseTypeRegistry:
    """``playbooks/case_types`` plus ``CASE_TYPE_DIRS_EXTRA``, validated (raises
    ``CaseTypeError`` naming every problem). The worker loads them the same way
    (``playbooks.launch.load_registry``)."""
    from playbooks.launch import load_registry

    return load_registry(settings)


def get_case_types(request: Request) -> CaseTypeRegistry:
    """The case types loaded at start (``app.state.case_types``; loaded on first use when the
    lifespan did not run, e.g. an in-process test client)."""
    registry: CaseTypeRegistry | None = getattr(request.app.state, "case_types", None)
    if registry is None:
        registry = load_case_types(request.app.state.settings)
        request.app.state.case_types = registry
    return registry


class Throttle:
    """Rate limits (``limits``) for sign-in failures and portal links, in the storage named by
    ``RATE_LIMIT_STORAGE``: in memory per process by default, shared (Redis) across replicas.
    One per app (``app.state.throttle``), so every test app starts with clean counters.
    Keys are hashed: no username, address or portal token is held in clear."""

    def __init__(self, settings: Settings) -> None:
        storage = storage_from_string(settings.rate_limit_storage)
        if not isinstance(storage, AsyncStorage):
            raise ConfigurationError(f"{settings.rate_limit_storage} is not an async storage")
        self._limiter = MovingWindowRateLimiter(storage)
        self.login_per_user = parse(settings.login_failures_per_user)
        self.login_per_address = parse(settings.login_failures_per_address)
        self.portal_per_token = parse(settings.portal_requests_per_token)
        self.portal_per_address = parse(settings.portal_requests_per_address)

    @staticmethod
    def _key(*parts: str) -> str:
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]

    async def retry_after(self, checks: list[tuple[RateLimitItem, str]]) -> int | None:
        """Seconds until every limit has room again, or None when none is exhausted."""
        waits: list[int] = []
        for item, key in checks:
            if not await self._limiter.test(item, self._key(key)):
                reset, _ = await self._limiter.get_window_stats(item, self._key(key))
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None

    async def hit(self, checks: list[tuple[RateLimitItem, str]]) -> None:
        for item, key in checks:
            await self._limiter.hit(item, self._key(key))

    def login_checks(self, address: str, username: str) -> list[tuple[RateLimitItem, str]]:
        return [
            (self.login_per_user, f"login-user\x1f{address}\x1f{username.lower()}"),
            (self.login_per_address, f"login-address\x1f{address}"),
        ]

    def portal_checks(self, address: str, token: str | None) -> list[tuple[RateLimitItem, str]]:
        """Every portal request counts per address; per link only for a genuine link (a
        guesser's made-up tokens are each new, so the address limit is what stops them)."""
        checks = [(self.portal_per_address, f"portal-address\x1f{address}")]
        if token is not None:
            checks.append((self.portal_per_token, f"portal-token\x1f{token}"))
        return checks


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` so this is the real client)."""
    return request.client.host if request.client else "unknown"


def get_throttle(request: Request) -> Throttle:
    """The app's throttle (made on first use when ``create_app`` did not, e.g. a bare app)."""
    throttle: Throttle | None = getattr(request.app.state, "throttle", None)
    if throttle is None:
        throttle = Throttle(request.app.state.settings)
        request.app.state.throttle = throttle
    return throttle


SESSION_USER = "user"  # key in the signed session cookie (set by the console's login)


@dataclass(frozen=True)
class Caller:
    """Who is calling: an API key's role (with a short non-secret key id for audit) or a
    console user signed in with a session cookie."""

    role: Role
    key_id: str
    username: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """What the audit trail records as the actor's channel."""
        if self.username:
            return self.username
        return f"{self.role.value}:{self.key_id}"


def session_caller(request: Request, settings: Settings) -> Caller | None:
    """The signed-in console user, if the session cookie names one that still exists."""
    if "session" not in request.scope:
        return None
    username = request.session.get(SESSION_USER)
    user = settings.console_users.get(username) if isinstance(username, str) else None
    if user is None:
        return None
    return Caller(role=user.role, key_id="session", username=username, name=user.name)


def get_caller(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings_dep)],
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """401 unless an API key (X-API-Key or Authorization: Bearer) or a console session."""
    key = api_key or (credentials.credentials if credentials else None)
    if key is not None:
        role = settings.api_keys.get(key)
        if role is not None:
            return Caller(role=role, key_id=hashlib.sha256(key.encode()).hexdigest()[:8])
    elif (caller := session_caller(request, settings)) is not None:
        return caller
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="missing or invalid API key (send X-API-Key) or console session",
        headers={"WWW-Authenticate": "Bearer"},
    )


# The dependencies below as coroutines: FastAPI runs a plain ``def`` dependency in a worker
# thread, a thread hop each per request (about 0.25 ms of CPU each on a busy 2-core host,
# bench/scale_bench.py); these do no blocking I/O, so they run on the event loop. The plain
# functions stay for the routes that call them directly.
async def settings_dep(request: Request) -> Settings:
    return get_settings_dep(request)


async def temporal_dep(request: Request) -> Client:
    return get_temporal(request)


async def case_types_dep(request: Request) -> CaseTypeRegistry:
    if getattr(request.app.state, "case_types", None) is None:  # first use: reads the files
        return await run_in_threadpool(get_case_types, request)
    return get_case_types(request)


async def caller_dep(
    request: Request,
    settings: Annotated[Settings, Depends(settings_dep)],
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    return get_caller(request, settings, api_key, credentials)


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """Dependency factory: 403 unless the caller has one of ``roles``."""

    async def check(caller: Annotated[Caller, Depends(caller_dep)]) -> Caller:
        if caller.role not in roles and caller.role != Role.ADMIN:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {caller.role.value} may not do this (needs one of: {allowed})",
            )
        return caller

    return check


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(temporal_dep)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
CaseTypesDep = Annotated[CaseTypeRegistry, Depends(case_types_dep)]
STAFF = (Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER, Role.RELATIONSHIP_MANAGER, Role.OPERATOR)
AnyRole = Annotated[Caller, Depends(require(Role.CLIENT_APP, *STAFF))]
AnyStaff = Annotated[Caller, Depends(require(*STAFF))]
CaseCreator = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER))]
CaseWorker = Annotated[Caller, Depends(require(Role.CASE_MANAGER))]
Reviewer = Annotated[Caller, Depends(require(Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER))]
TaskDoer = Annotated[
    Caller,
    Depends(require(Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER, Role.RELATIONSHIP_MANAGER)),
]
DocumentSubmitter = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER))]
ClientOrManager = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER))]
ClientApp = Annotated[Caller, Depends(require(Role.CLIENT_APP))]
