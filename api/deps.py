"""FastAPI dependencies: the DB session, the Temporal client and the caller's role."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.settings import Role, Settings

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


@dataclass(frozen=True)
class Caller:
    """Who is calling: the role the API key maps to, and a short non-secret key id for audit."""

    role: Role
    key_id: str

    @property
    def label(self) -> str:
        return f"{self.role.value}:{self.key_id}"


def get_caller(
    settings: Annotated[Settings, Depends(get_settings_dep)],
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """401 for a missing or unknown key (X-API-Key or Authorization: Bearer)."""
    key = api_key or (credentials.credentials if credentials else None)
    role = settings.api_keys.get(key) if key else None
    if key is None or role is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key (send X-API-Key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller(role=role, key_id=hashlib.sha256(key.encode()).hexdigest()[:8])


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """Dependency factory: 403 unless the caller has one of ``roles``."""

    async def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if caller.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {caller.role.value} may not do this (needs one of: {allowed})",
            )
        return caller

    return check


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
AnyRole = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER, Role.OPERATOR))]
CaseCreator = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER))]
CaseWorker = Annotated[Caller, Depends(require(Role.CASE_MANAGER))]
DocumentSubmitter = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER))]
