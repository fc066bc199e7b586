"""Engine and session factory. One engine per process; sessions are short-lived."""

from __future__ import annotations

from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, pre_ping: bool = True
) -> AsyncEngine:
    """An asyncpg engine. ``pre_ping`` checks each connection as it leaves the pool (a round
    trip per checkout) so a Postgres restart costs no failed request; without it the first
    use of a dropped connection fails (the API answers 503, an activity is retried) and the
    pool replaces every connection older than the failure."""
    # looked up when called: OpenTelemetry's SQLAlchemy instrumentation (core/tracing.py)
    # wraps the module's function after this module was imported
    return sqlalchemy_asyncio.create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=pre_ping
    )


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)
