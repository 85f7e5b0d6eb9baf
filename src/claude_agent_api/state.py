"""The typed state built once in the lifespan and handed out by small dependencies."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.config import Settings
from claude_agent_api.kit import migrations
from claude_agent_api.kit.coordination import CoordinationBackend, create_coordination
from claude_agent_api.kit.database import SessionFactory, create_engine, create_session_factory, unit_of_work
from claude_agent_api.kit.metrics import Metrics
from claude_agent_api.kit.ratelimit import RateLimiter
from claude_agent_api.runs.manager import RunManager

log = structlog.get_logger("claude_agent_api.state")


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    coordination: CoordinationBackend
    rate_limiter: RateLimiter
    metrics: Metrics
    run_manager: RunManager

    @classmethod
    async def start(cls, settings: Settings, metrics: Metrics) -> AppState:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.effective_workspace_root.mkdir(parents=True, exist_ok=True)
        if settings.auto_migrate:
            await migrations.upgrade_async(settings.effective_database_url)
        engine = create_engine(settings.effective_database_url, pool_size=settings.db_pool_size)
        factory = create_session_factory(engine)
        coordination = create_coordination(settings.redis_url, namespace=settings.namespace)
        state = cls(
            settings=settings,
            engine=engine,
            session_factory=factory,
            coordination=coordination,
            rate_limiter=RateLimiter(settings),
            metrics=metrics,
            run_manager=RunManager(settings, factory, coordination, metrics),
        )
        await state.run_manager.startup()
        if settings.bootstrap_admin_key is not None:
            await state._ensure_bootstrap_key(settings.bootstrap_admin_key.get_secret_value())
        log.info(
            "app.started",
            database=engine.dialect.name,
            coordination=coordination.name,
            workspace_root=str(settings.effective_workspace_root),
        )
        return state

    async def _ensure_bootstrap_key(self, secret: str) -> None:
        try:
            async with unit_of_work(self.session_factory) as session:
                await ApiKeyService(session).ensure_bootstrap(secret)
        except IntegrityError:
            pass  # another instance stored it at the same moment

    async def aclose(self) -> None:
        await self.run_manager.shutdown()
        await self.rate_limiter.close()
        await self.coordination.close()
        await self.engine.dispose()
        log.info("app.stopped")
