"""Migrations upgrade an empty database on both engines, and the models match the migrated schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from claude_agent_api.kit import migrations
from claude_agent_api.kit.database import create_engine
from claude_agent_api.models import Base
from tests.support import services


def _schema(conn: Connection) -> tuple[set[str], list[object], str | None]:
    tables = set(inspect(conn).get_table_names())
    context = MigrationContext.configure(conn)
    return tables, compare_metadata(context, Base.metadata), context.get_current_revision()


async def _upgrade_and_inspect(url: str) -> None:
    await migrations.upgrade_async(url)
    await migrations.upgrade_async(url)  # idempotent
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            tables, diff, revision = await conn.run_sync(_schema)
    finally:
        await engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables
    assert revision is not None
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_sqlite_empty_database_upgrades(tmp_path: Path) -> None:
    await _upgrade_and_inspect(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")


@pytest.mark.postgres
async def test_postgres_empty_database_upgrades() -> None:
    services.require("postgres")
    url = await services.acreate_postgres_database("caa_migrate")
    try:
        await _upgrade_and_inspect(url)
    finally:
        await services.adrop_postgres_database(url)
