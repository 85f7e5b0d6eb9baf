"""The application factory: lifespan builds the typed state, routers are mounted, error handlers installed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from claude_agent_api import __version__
from claude_agent_api.auth.router import router as keys_router
from claude_agent_api.catalog.router import router as catalog_router
from claude_agent_api.checkpoints.router import router as checkpoints_router
from claude_agent_api.config import Settings, load_settings
from claude_agent_api.errors import add_exception_handlers
from claude_agent_api.kit.logging import configure_logging, redactor
from claude_agent_api.kit.metrics import Metrics
from claude_agent_api.kit.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from claude_agent_api.ops.router import metrics_router
from claude_agent_api.ops.router import router as ops_router
from claude_agent_api.runs.interaction import router as interaction_router
from claude_agent_api.runs.router import router as runs_router
from claude_agent_api.runs.websocket import router as websocket_router
from claude_agent_api.sessions.expiry import run_sweeper
from claude_agent_api.sessions.messages import router as messages_router
from claude_agent_api.sessions.router import router as sessions_router
from claude_agent_api.state import AppState


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    redactor.add_secrets(settings.secret_values())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await AppState.start(settings, metrics)
        app.state.caa = state
        sweeper = asyncio.create_task(run_sweeper(state), name="session-expiry-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await state.aclose()

    app = FastAPI(
        title="Claude Agent API",
        version=__version__,
        description="Run Claude agents over HTTP: REST, Server-Sent Events and WebSocket.",
        lifespan=lifespan,
    )
    add_exception_handlers(app)
    # Each router carries its full path (API_PREFIX included) so route templates are complete for metrics.
    routers = (
        ops_router,
        keys_router,
        sessions_router,
        messages_router,
        runs_router,
        interaction_router,
        websocket_router,
        catalog_router,
        checkpoints_router,
        metrics_router,
    )
    for router in routers:
        app.include_router(router)

    # Added last = outermost: the request context wraps everything, CORS answers preflights early.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            ],
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for uvicorn workers: settings from the environment, logging configured."""
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json, secrets=settings.secret_values())
    return create_app(settings)
