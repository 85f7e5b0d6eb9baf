"""Liveness, readiness against real dependencies that go away and come back, and metrics."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures import SettingsFactory, running_app
from tests.support import services
from tests.support.proxy import TcpProxy


async def test_liveness_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["X-Request-ID"]


async def test_readiness_reports_each_dependency(client: httpx.AsyncClient, backend) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    expected = ("sqlite", "memory") if backend.name == "embedded" else ("postgresql", "redis")
    assert (body["checks"]["database"]["backend"], body["checks"]["coordination"]["backend"]) == expected
    assert all(c["status"] == "ok" and c["latency_ms"] >= 0 for c in body["checks"].values())


@pytest.mark.redis
async def test_readiness_is_503_while_redis_is_unreachable_and_recovers(make_settings: SettingsFactory) -> None:
    services.require("redis")
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    try:
        settings = make_settings(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        async with running_app(settings) as client:
            assert (await client.get("/api/v1/health/ready")).status_code == 200
            await proxy.stop()
            down = await client.get("/api/v1/health/ready")
            assert down.status_code == 503
            assert down.json()["status"] == "unavailable"
            assert down.json()["checks"]["coordination"]["status"] == "down"
            assert down.json()["checks"]["database"]["status"] == "ok"
            await proxy.start()
            assert (await client.get("/api/v1/health/ready")).status_code == 200
    finally:
        await proxy.stop()


@pytest.mark.postgres
async def test_readiness_is_503_while_postgres_is_unreachable_and_recovers(
    make_settings: SettingsFactory, postgres_url: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    try:
        db_name = postgres_url.rsplit("/", 1)[1]
        settings = make_settings(
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{db_name}", redis_url=None
        )
        async with running_app(settings) as client:
            assert (await client.get("/api/v1/health/ready")).status_code == 200
            await proxy.stop()
            down = await client.get("/api/v1/health/ready")
            assert down.status_code == 503
            assert down.json()["checks"]["database"]["status"] == "down"
            assert down.json()["checks"]["coordination"]["status"] == "ok"
            await proxy.start()
            assert (await client.get("/api/v1/health/ready")).status_code == 200
    finally:
        await proxy.stop()


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/health")
    await client.get("/api/v1/keys")
    text = (await client.get("/metrics")).text
    assert 'caa_http_requests_total{method="GET",route="/api/v1/health",status="200"} 1.0' in text
    assert 'caa_http_requests_total{method="GET",route="/api/v1/keys",status="401"} 1.0' in text
    assert "caa_http_request_duration_seconds_bucket" in text
    assert "caa_active_runs 0.0" in text
