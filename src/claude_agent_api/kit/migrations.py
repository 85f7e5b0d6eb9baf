"""Run Alembic migrations from code (``claude-agent-api db upgrade`` and the start-up auto-migration)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; Alembic's env runs an event loop of its own, so when
    called from a thread that already runs one, the work moves to a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), revision)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Apply migrations from inside a running event loop (Alembic's env runs a loop of its own)."""
    await asyncio.to_thread(upgrade, url, revision)
