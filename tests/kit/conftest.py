"""Coordination fixtures: every test taking ``coordination`` runs once per backend (``memory``, ``redis``).

The Redis parameter uses ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) under a random namespace
whose keys are deleted afterwards. Without a reachable Redis it skips, or fails when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from claude_agent_api.kit.coordination import CoordinationBackend, MemoryCoordination, RedisCoordination
from tests.support import services

CoordinationFactory = Callable[[], CoordinationBackend]


async def clean_namespace(url: str, namespace: str) -> int:
    """Delete the namespace's keys; return how many connections of its backends are still open."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await client.delete(*keys)
        for _ in range(20):  # the server notices closed sockets asynchronously
            open_connections = [c for c in await client.client_list() if c["name"].startswith(namespace)]
            if not open_connections:
                break
            await asyncio.sleep(0.05)
        return len(open_connections)
    finally:
        await client.aclose()


@pytest.fixture(params=[pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)])
async def coordination_factory(request: pytest.FixtureRequest) -> AsyncIterator[CoordinationFactory]:
    """Opens handles on one shared coordination state, as separate instances of the service would.

    Memory: the same in-process backend every time. Redis: a new client on the same namespace each call.
    All handles are closed after the test; on Redis the namespace is emptied and no connection of those
    handles may remain open.
    """
    opened: list[CoordinationBackend] = []
    namespace = f"test-{uuid.uuid4().hex}"
    if request.param == "redis":
        services.require("redis")
        url = services.REDIS_URL

        def factory() -> CoordinationBackend:
            backend = RedisCoordination(url, namespace=namespace, connect_timeout=1.0)
            opened.append(backend)
            return backend
    else:
        memory = MemoryCoordination()
        opened.append(memory)

        def factory() -> CoordinationBackend:
            return memory

    try:
        yield factory
    finally:
        for backend in opened:
            await backend.close()
        if request.param == "redis":
            leaked = await clean_namespace(url, namespace)
            assert leaked == 0, f"{leaked} Redis connection(s) left open after close()"


@pytest.fixture
def coordination(coordination_factory: CoordinationFactory) -> CoordinationBackend:
    return coordination_factory()
