"""Idle expiry: what a client gets for an expired session (410), and what the sweep removes and keeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from claude_agent_api.app import create_app
from claude_agent_api.config import Settings
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.models import AgentSession, Run, SessionTag, TranscriptEntry
from claude_agent_api.sessions.errors import SessionExpired
from claude_agent_api.sessions.expiry import ensure_not_expired, run_sweeper, sweep_expired
from tests.fixtures import SettingsFactory, app_state, create_key, running_app
from tests.sessions.factories import create_run, create_session, create_transcript, mount_sessions_router, workdir

URL = "/api/v1/sessions"
IDLE = timedelta(seconds=60)


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(rate_limit_enabled=False, session_idle_expiry_seconds=60, expiry_sweep_interval_seconds=1)
    async with running_app(settings, app=mount_sessions_router(create_app(settings))) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def stored(client: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    """The session's row and how many runs, transcript entries and tags it still has."""
    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        row = await db.get(AgentSession, session_id)

        async def count(model: Any) -> int:
            return (await db.execute(select(func.count()).where(model.session_id == session_id))).scalar_one()

        return {
            "row": row,
            "runs": await count(Run),
            "transcript": await count(TranscriptEntry),
            "tags": await count(SessionTag),
        }


def unit_settings(expiry: int | None) -> Settings:
    return Settings(_env_file=None, session_idle_expiry_seconds=expiry)


def test_ensure_not_expired_decides_by_the_clock() -> None:
    now = datetime.now(UTC)
    idle = AgentSession(id="s", status="idle", last_activity_at=now - IDLE)
    running = AgentSession(id="r", status="running", last_activity_at=now - 10 * IDLE)
    marked = AgentSession(id="m", status="expired", last_activity_at=now, expired_at=now - IDLE)

    ensure_not_expired(idle, unit_settings(None), now=now)  # expiry off: never
    ensure_not_expired(idle, unit_settings(60), now=now - timedelta(microseconds=1))
    ensure_not_expired(running, unit_settings(60), now=now)  # a running session is not idle
    with pytest.raises(SessionExpired) as lapsed:
        ensure_not_expired(idle, unit_settings(60), now=now)
    assert lapsed.value.status == 410 and lapsed.value.details == {"expired_at": now.isoformat()}
    with pytest.raises(SessionExpired) as swept:
        ensure_not_expired(marked, unit_settings(None), now=now)
    assert swept.value.details == {"expired_at": (now - IDLE).isoformat()}


async def test_expired_session_answers_410_with_its_expiry_time(client: httpx.AsyncClient) -> None:
    key, other = await create_key(client), await create_key(client, "other")
    now = datetime.now(UTC)
    stale = await create_session(client, key, title="old", last_activity_at=now - 2 * IDLE)
    fresh = await create_session(client, key, last_activity_at=now - IDLE / 2)
    busy = await create_session(client, key, status="running", last_activity_at=now - 10 * IDLE)

    for method, body in (("GET", None), ("PATCH", {"title": "new"})):
        response = await client.request(method, f"{URL}/{stale.id}", json=body, headers=auth(key))
        assert response.status_code == 410, (method, response.text)
        error = response.json()["error"]
        assert error["code"] == "SESSION_EXPIRED"
        assert datetime.fromisoformat(error["details"]["expired_at"]) == stale.last_activity_at + IDLE
    assert (await stored(client, stale.id))["row"].title == "old"
    assert (await client.get(f"{URL}/{stale.id}", headers=auth(other))).status_code == 404  # ownership first

    fresh_body = (await client.get(f"{URL}/{fresh.id}", headers=auth(key))).json()
    assert datetime.fromisoformat(fresh_body["expires_at"]) == fresh.last_activity_at + IDLE
    busy_body = (await client.get(f"{URL}/{busy.id}", headers=auth(key))).json()
    assert busy_body["status"] == "running" and busy_body["expires_at"] is None

    async def listed(**params: Any) -> dict[str, str]:
        response = await client.get(URL, params=params, headers=auth(key))
        return {i["id"]: i["status"] for i in response.json()["data"]}

    assert await listed() == {stale.id: "expired", fresh.id: "idle", busy.id: "running"}
    assert await listed(status="expired") == {stale.id: "expired"}
    assert await listed(status="idle") == {fresh.id: "idle"}


async def test_sweep_marks_expired_sessions_and_deletes_their_data(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    state = app_state(client.app)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    stale = await create_session(client, key, tags=["t"], last_activity_at=now - 3 * IDLE, with_workdir=True)
    await create_run(client, stale)
    await create_transcript(client, stale.id, count=3)
    custom = await create_session(
        client, key, status="failed", cwd="projects/app", last_activity_at=now - 2 * IDLE, with_workdir=True
    )
    busy = await create_session(client, key, status="running", last_activity_at=now - 5 * IDLE)
    await create_run(client, busy, status="running")
    fresh = await create_session(client, key, last_activity_at=now - IDLE / 2)
    await create_run(client, fresh)
    before = (await client.get(f"{URL}/{stale.id}", headers=auth(key))).json()

    assert await sweep_expired(state.session_factory, state.settings) == 2

    swept = await stored(client, stale.id)
    assert swept["row"].status == "expired" and swept["row"].expired_at == stale.last_activity_at + IDLE
    assert (swept["runs"], swept["transcript"], swept["tags"]) == (0, 0, 1)
    assert not workdir(client, stale.owner_key_id, stale.cwd).exists()
    assert (await stored(client, custom.id))["row"].status == "expired"
    assert (workdir(client, custom.owner_key_id, "projects/app") / "notes.txt").is_file()
    for kept in (busy, fresh):
        left = await stored(client, kept.id)
        assert left["row"].status == kept.status and left["runs"] == 1
    after = await client.get(f"{URL}/{stale.id}", headers=auth(key))
    assert after.status_code == 410 and after.json() == before

    assert await sweep_expired(state.session_factory, state.settings) == 0
    assert await sweep_expired(state.session_factory, state.settings, now=now + 2 * IDLE) == 1
    assert (await stored(client, fresh.id))["row"].status == "expired"
    assert (await stored(client, busy.id))["row"].status == "running"

    assert (await client.delete(f"{URL}/{stale.id}", headers=auth(key))).status_code == 204
    assert (await stored(client, stale.id))["row"] is None


async def test_sweeper_loop_sweeps_and_outlives_failures(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    state = app_state(client.app)  # type: ignore[attr-defined]
    stale = await create_session(client, key, last_activity_at=datetime.now(UTC) - 2 * IDLE)
    task = asyncio.create_task(run_sweeper(state))
    try:
        for _ in range(100):
            if (await stored(client, stale.id))["row"].status == "expired":
                break
            await asyncio.sleep(0.05)
        assert (await stored(client, stale.id))["row"].status == "expired"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def broken_factory() -> Any:
        raise RuntimeError("database is gone")

    broken = SimpleNamespace(settings=state.settings, session_factory=broken_factory)
    with capture_logs() as logs:
        task = asyncio.create_task(run_sweeper(broken))  # type: ignore[arg-type]
        await asyncio.sleep(1.3)  # the interval is one second: two attempts
        assert not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [e["event"] for e in logs].count("sessions.sweep_failed") == 2


async def test_sweeper_does_nothing_when_expiry_is_off() -> None:
    state = SimpleNamespace(settings=unit_settings(None), session_factory=None)
    await asyncio.wait_for(run_sweeper(state), timeout=1)  # type: ignore[arg-type]
