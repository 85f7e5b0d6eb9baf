"""Operations: liveness, readiness (database and coordination, with latency) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from claude_agent_api import __version__
from claude_agent_api.dependencies import State
from claude_agent_api.kit.database import ping as db_ping
from claude_agent_api.kit.http import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["operations"])
metrics_router = APIRouter(tags=["operations"])
CHECK_TIMEOUT = 2.0


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class DependencyStatus(BaseModel):
    status: Literal["ok", "down"]
    backend: str
    latency_ms: float | None = None
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, DependencyStatus]


@router.get("/health", response_model=Health)
async def health() -> Health:
    return Health(status="ok", version=__version__)


async def _check(backend: str, probe: Callable[[], Awaitable[object]]) -> DependencyStatus:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except TimeoutError:
        return DependencyStatus(status="down", backend=backend, error=f"no answer within {CHECK_TIMEOUT} s")
    except Exception as exc:
        return DependencyStatus(status="down", backend=backend, error=type(exc).__name__)
    return DependencyStatus(status="ok", backend=backend, latency_ms=round((time.perf_counter() - start) * 1000, 2))


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down."}},
)
async def ready(state: State) -> JSONResponse:
    database, coordination = await asyncio.gather(
        _check(state.engine.dialect.name, lambda: db_ping(state.engine)),
        _check(state.coordination.name, state.coordination.ping),
    )
    checks = {"database": database, "coordination": coordination}
    ok = all(c.status == "ok" for c in checks.values())
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
