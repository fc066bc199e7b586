"""Run Alembic migrations programmatically (used by ``onboarding migrate``, ``make run``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config that needs no alembic.ini, so the installed package can migrate too."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_head(url: str) -> None:
    """Bring the schema to the newest revision. Blocking: call via ``asyncio.to_thread``."""
    command.upgrade(alembic_config(url), "head")
