"""Factories for session tests: rows written straight to the app's database, files to its workspace.

``target`` is the test's HTTP client (its ``app``) or an :class:`AppState`; ``key`` is a key's secret (as
returned by ``create_key``) or its id.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from claude_agent_api.auth import keys
from claude_agent_api.auth.repository import ApiKeyRepository
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.kit.workspace import key_workspace
from claude_agent_api.models import AgentSession, Run, RunStatus, SessionStatus, SessionTag, TranscriptEntry
from claude_agent_api.models.base import utcnow
from claude_agent_api.sessions.router import router as sessions_router
from claude_agent_api.state import AppState
from tests.fixtures import app_state

Target = httpx.AsyncClient | AppState


def mount_sessions_router(app: FastAPI) -> FastAPI:
    """Mount the sessions router unless the app factory already does."""
    mounted = {getattr(route, "path", None) for route in app.routes}
    if "/api/v1/sessions" not in mounted:
        app.include_router(sessions_router)
    return app


def state_of(target: Target) -> AppState:
    return target if isinstance(target, AppState) else app_state(target.app)  # type: ignore[attr-defined]


async def key_id(target: Target, key: str) -> str:
    if not key.startswith(keys.KEY_PREFIX):
        return key
    async with unit_of_work(state_of(target).session_factory) as db:
        row = await ApiKeyRepository(db).get_by_digest(keys.digest(key))
    assert row is not None, "unknown key secret"
    return row.id


def workdir(target: Target, owner_key_id: str, cwd: str) -> Path:
    return key_workspace(state_of(target).settings.effective_workspace_root, owner_key_id) / cwd


async def create_session(target: Target, key: str, *, with_workdir: bool = False, **fields: Any) -> AgentSession:
    """A session of ``key`` (idle, default cwd ``sessions/<id>``); ``tags`` also get their ``session_tags`` rows;
    ``with_workdir`` creates its working directory with a file in it."""
    owner = await key_id(target, key)
    session_id = fields.pop("id", None) or str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": session_id,
        "owner_key_id": owner,
        "status": SessionStatus.IDLE.value,
        "model": "claude-sonnet-4-5",
        "cwd": f"sessions/{session_id}",
        "last_activity_at": utcnow(),
        **fields,
    }
    row = AgentSession(**values)
    async with unit_of_work(state_of(target).session_factory) as db:
        db.add(row)
        await db.flush()
        db.add_all(SessionTag(session_id=session_id, tag=tag) for tag in row.tags or [])
    if with_workdir:
        path = workdir(target, owner, row.cwd)
        path.mkdir(parents=True, exist_ok=True)
        (path / "notes.txt").write_text("work in progress\n")
    return row


async def create_run(target: Target, session: AgentSession, **fields: Any) -> Run:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "session_id": session.id,
        "owner_key_id": session.owner_key_id,
        "status": RunStatus.COMPLETED.value,
        "prompt_preview": "hello",
        "stop_reason": "end_turn",
        "num_turns": 1,
        "total_cost_usd": 0.01,
        "started_at": utcnow(),
        "finished_at": utcnow(),
        **fields,
    }
    row = Run(**values)
    async with unit_of_work(state_of(target).session_factory) as db:
        db.add(row)
    return row


async def create_transcript(target: Target, session_id: str, count: int = 3) -> list[TranscriptEntry]:
    rows = [
        TranscriptEntry(
            session_id=session_id,
            subpath="" if i % 2 == 0 else "subagents/agent-1",
            uuid=str(uuid.uuid4()),
            entry_type="user",
            entry={"type": "user", "message": {"role": "user", "content": f"message {i}"}},
        )
        for i in range(count)
    ]
    async with unit_of_work(state_of(target).session_factory) as db:
        db.add_all(rows)
    return rows
