"""Which Postgres to use: ``DATABASE_URL`` if set, else the embedded one under the data dir."""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def resolve_database_url(settings: Settings) -> tuple[str, Any | None]:
    """Return the URL and, when we started an embedded server, its handle (keep it alive)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value(), None
    from store.embedded import start_embedded_postgres

    server, url = start_embedded_postgres(settings.data_dir / "postgres")
    return url, server
