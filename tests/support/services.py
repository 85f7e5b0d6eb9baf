"""Where the real PostgreSQL and Redis are, and what to do when they are absent.

With ``CI=true`` they are mandatory: a missing server fails the tests that need it. Elsewhere those tests skip
with a message saying which server is missing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


@cache
def postgres_available() -> bool:
    return _reachable(POSTGRES_URL, 5432)


@cache
def redis_available() -> bool:
    return _reachable(REDIS_URL, 6379)


def require(service: str) -> None:
    """Fail (in CI) or skip (elsewhere) when ``service`` ("postgres" | "redis") is not reachable."""
    ok = postgres_available() if service == "postgres" else redis_available()
    if ok:
        return
    url = POSTGRES_URL if service == "postgres" else REDIS_URL
    message = f"{service} is not reachable at {url}"
    if in_ci():
        pytest.fail(f"{message}; with CI=true the {service} suite is mandatory")
    pytest.skip(f"{message} (set TEST_DATABASE_URL / TEST_REDIS_URL, or start it, to run these tests)")


def _admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin_dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def acreate_postgres_database(prefix: str = "caa_test") -> str:
    """Create a fresh, empty database next to the test database; return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"


async def adrop_postgres_database(url: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even when this thread already runs an event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def create_postgres_database(prefix: str = "caa_test") -> str:
    return _run(acreate_postgres_database(prefix))


def drop_postgres_database(url: str) -> None:
    _run(adrop_postgres_database(url))
