"""Fixtures for in-process API tests: one app per test on either backend pair, real HTTP semantics over ASGI.

``backend`` is parametrized: ``embedded`` (SQLite + in-process coordination) and ``production`` (PostgreSQL +
Redis). Tests that take ``client`` or ``app_factory`` run on both.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from sqlalchemy import text

from claude_agent_api.app import create_app
from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.config import Settings
from claude_agent_api.kit import migrations
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.models import Base, KeyScope
from claude_agent_api.state import AppState
from tests.support import services
from tests.support.live import LiveServer, live_server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrations.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    services.require("postgres")
    url = services.create_postgres_database()
    migrations.upgrade(url)
    yield url
    services.drop_postgres_database(url)


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    namespace: str


async def _truncate(url: str) -> None:
    from claude_agent_api.kit.database import create_engine

    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def _clear_redis(namespace: str) -> None:
    client = aioredis.from_url(services.REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "embedded":
        db = tmp_path / "db.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), db)
        yield Backend("embedded", f"sqlite+aiosqlite:///{db}", None, namespace)
        return
    services.require("redis")
    url = request.getfixturevalue("postgres_url")
    await _truncate(url)
    yield Backend("production", url, services.REDIS_URL, namespace)
    await _clear_redis(namespace)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(backend: Backend, tmp_path: Path) -> SettingsFactory:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": backend.database_url,
            "redis_url": backend.redis_url,
            "namespace": backend.namespace,
            "auto_migrate": False,
            "anthropic_api_key": None,
            "anthropic_base_url": None,
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


def app_state(app: FastAPI) -> AppState:
    state = app.state.caa
    assert isinstance(state, AppState)
    return state


@asynccontextmanager
async def running_app(
    settings: Settings, *, client_host: str = "127.0.0.1", app: FastAPI | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (lifespan included) and yield an HTTP client for it; ``client.app`` is the app."""
    app = app or create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_host, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings()) as c:
        yield c


async def create_key(client: httpx.AsyncClient, name: str = "tenant", scope: KeyScope = KeyScope.USER) -> str:
    """Factory: a new key stored in the app's database; returns the secret."""
    state = app_state(client.app)  # type: ignore[attr-defined]
    async with unit_of_work(state.session_factory) as session:
        _, secret = await ApiKeyService(session).create(name, scope)
    return secret


@pytest.fixture
async def user_key(client: httpx.AsyncClient) -> str:
    return await create_key(client, "user")


@pytest.fixture
async def admin_key(client: httpx.AsyncClient) -> str:
    return await create_key(client, "admin", KeyScope.ADMIN)


# -- end-to-end: a real server, the real CLI, the scripted model -----------------------------------------------


@pytest.fixture
def e2e_settings(make_settings: SettingsFactory, model_server: Any, tmp_path: Path) -> SettingsFactory:
    """Settings whose agent CLI talks to the scripted model (no retries: errors surface at once)."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "anthropic_base_url": model_server.base_url,
            "anthropic_api_key": "test-key",
            "agent_max_retries": 0,
            "rate_limit_enabled": False,
            "drain_seconds": 1,
        }
        values.update(overrides)
        return make_settings(**values)

    return factory


@pytest.fixture
def live(e2e_settings: SettingsFactory) -> Iterator[LiveServer]:
    with live_server(e2e_settings()) as server:
        yield server


async def create_live_key(server: LiveServer, name: str = "tenant", scope: KeyScope = KeyScope.USER) -> str:
    async with server.db() as session:
        _, secret = await ApiKeyService(session).create(name, scope)
        await session.commit()
    return secret


@pytest.fixture
async def live_key(live: LiveServer) -> str:
    return await create_live_key(live)
