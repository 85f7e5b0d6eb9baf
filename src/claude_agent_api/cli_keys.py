"""Key administration from the command line, straight against the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.config import Settings
from claude_agent_api.errors import KeyNotFound
from claude_agent_api.kit import migrations
from claude_agent_api.kit.database import create_engine, create_session_factory, unit_of_work
from claude_agent_api.models import ApiKey, KeyScope


@asynccontextmanager
async def _transaction(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A unit of work on a fresh engine; migrates first on the embedded default, like the server does."""
    if settings.auto_migrate:
        await migrations.upgrade_async(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url, pool_size=1)
    try:
        async with unit_of_work(create_session_factory(engine)) as session:
            yield session
    finally:
        await engine.dispose()


async def create_key(settings: Settings, name: str, *, admin: bool) -> tuple[str, str, str]:
    async with _transaction(settings) as session:
        row, secret = await ApiKeyService(session).create(name, KeyScope.ADMIN if admin else KeyScope.USER)
        return row.id, secret, row.webhook_secret or ""


async def list_keys(settings: Settings, *, include_revoked: bool) -> Sequence[ApiKey]:
    async with _transaction(settings) as session:
        return await ApiKeyService(session).list(include_revoked=include_revoked)


async def revoke_key(settings: Settings, key_id: str) -> bool:
    try:
        async with _transaction(settings) as session:
            await ApiKeyService(session).revoke(key_id)
    except KeyNotFound:
        return False
    return True
