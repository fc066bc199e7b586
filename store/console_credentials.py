"""Console password hashes upgraded at sign-in (``console_credentials``).

``CONSOLE_USERS`` comes from the environment; when a configured hash is an outdated format
(pbkdf2) the argon2id replacement made at sign-in is kept here, tagged with the fingerprint of
the configured hash it replaced. A row counts only while that fingerprint still matches the
configuration, so an admin who sets a new hash in ``CONSOLE_USERS`` overrides it.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ConsoleCredential


async def upgraded_hash(session: AsyncSession, username: str, fingerprint: str) -> str | None:
    """The stored hash for ``username`` if it replaced the configured hash ``fingerprint``."""
    return await session.scalar(
        select(ConsoleCredential.password_hash).where(
            ConsoleCredential.username == username,
            ConsoleCredential.source_fingerprint == fingerprint,
        )
    )


async def save_upgraded_hash(
    session: AsyncSession, username: str, password_hash: str, fingerprint: str
) -> None:
    """Insert or replace the user's upgraded hash (commits)."""
    stmt = insert(ConsoleCredential).values(
        username=username, password_hash=password_hash, source_fingerprint=fingerprint
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ConsoleCredential.username],
            set_={
                "password_hash": stmt.excluded.password_hash,
                "source_fingerprint": stmt.excluded.source_fingerprint,
                "updated_at": func.now(),
            },
        )
    )
    await session.commit()
