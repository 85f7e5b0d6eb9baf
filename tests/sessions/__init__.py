"""Tests of the sessions package; :func:`open_session_factory` is shared with the store's end-to-end test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from claude_agent_api.kit.database import SessionFactory, create_engine, create_session_factory


@asynccontextmanager
async def open_session_factory(database_url: str) -> AsyncIterator[SessionFactory]:
    """A session factory on a (migrated) test database, its engine disposed afterwards."""
    engine = create_engine(database_url, pool_size=5)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()
