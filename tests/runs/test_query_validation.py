"""Bad input to ``POST /query``: a 422 naming the field, and nothing runs (no row, no process, no model call)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import select

from claude_agent_api.models import AgentSession, Run
from tests.runs.test_query_e2e import key_workspace
from tests.support.live import LiveServer
from tests.support.processes_cli import cli_processes

pytestmark = pytest.mark.timeout(60)

CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x", "unknown_option": 1}, "unknown_option"),
    ({"prompt": "x", "max_turns": 0}, "max_turns"),
    ({"prompt": "x", "max_budget_usd": -1}, "max_budget_usd"),
    ({"prompt": "x", "permission_mode": "yolo"}, "permission_mode"),
    ({"prompt": "x", "effort": "extreme"}, "effort"),
    ({"prompt": "x", "session_id": "not-a-uuid"}, "session_id"),
    ({"prompt": "x", "model": "a b"}, "model"),
    ({"prompt": "x", "cwd": "../elsewhere"}, "cwd"),
    ({"prompt": "x", "cwd": "/etc"}, "cwd"),
    ({"prompt": "x", "cwd": "a\u0000b"}, "cwd"),
    ({"prompt": "x", "add_dirs": ["ok", "../../x"]}, "add_dirs.1"),
    ({"prompt": "x", "allowed_tools": ["Read", "Fly"]}, "allowed_tools.1"),
    ({"prompt": "x", "disallowed_tools": ["mcp__nowhere__tool"]}, "disallowed_tools.0"),
    ({"prompt": "x", "tools": ["Bash(git diff:*"]}, "tools"),
    ({"prompt": "x", "env": {"DATABASE_URL": "x"}}, "env"),
    ({"prompt": "x", "env": {"ANTHROPIC_API_KEY": "x"}}, "env"),
    ({"prompt": "x", "output_format": {"type": "json_schema", "schema": {"type": "nope"}}}, "output_format"),
    ({"prompt": "x", "setting_sources": ["everything"]}, "setting_sources"),
    ({"prompt": "x", "mcp_servers": {"s": {"type": "http", "url": "ftp://x"}}}, "mcp_servers"),
    ({"prompt": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}]}, "prompt"),
]


@pytest.mark.parametrize(("body", "field"), CASES, ids=[c[1] + f"-{i}" for i, c in enumerate(CASES)])
async def test_invalid_requests_are_refused_naming_the_field(
    live: LiveServer, live_key: str, model_server: Any, body: dict[str, Any], field: str
) -> None:
    before = len(model_server.requests())
    async with live.client(live_key) as client:
        response = await client.post("/api/v1/query", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    fields = [e["field"] for e in error["details"]["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert len(model_server.requests()) == before
    assert cli_processes(live.settings.data_dir) == []
    async with live.db() as db:
        assert (await db.execute(select(Run))).scalars().all() == []
        assert (await db.execute(select(AgentSession))).scalars().all() == []


async def test_a_symlink_out_of_the_workspace_is_refused(live: LiveServer, live_key: str, tmp_path: Any) -> None:
    workspace = await key_workspace(live, live_key)
    workspace.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path, workspace / "escape")
    async with live.client(live_key) as client:
        response = await client.post("/api/v1/query", json={"prompt": "x", "cwd": "escape"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["field"] == "cwd"


async def test_another_keys_session_is_not_found(live: LiveServer, live_key: str, model_server: Any) -> None:
    from tests.fixtures import create_live_key

    async with live.client(live_key) as client:
        first = await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["mine"])})
    other = await create_live_key(live, "other")
    async with live.client(other) as client:
        response = await client.post("/api/v1/query", json={"prompt": "x", "session_id": first.json()["session_id"]})
        unknown = await client.post(
            "/api/v1/query", json={"prompt": "x", "session_id": "6b1d0f3e-5f7a-4c59-9d55-0c0c3d6f4b11"}
        )
    assert response.status_code == 404 and unknown.status_code == 404
    assert response.json() == unknown.json()
    assert response.json()["error"]["code"] == "SESSION_NOT_FOUND"
