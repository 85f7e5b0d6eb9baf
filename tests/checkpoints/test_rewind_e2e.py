"""File checkpoints and rewind end to end: real server, real SDK, real CLI, scripted model.

The story of every test: a file exists before the session; turn 1 creates ``notes.txt``; turn 2 edits the
existing file and creates ``created.txt``. Rewinding to turn 2's checkpoint must give the edited file back byte
for byte and remove the created one (``notes.txt`` stays) — on the same instance, after a restart, and on a
second instance whose CLI config directory is empty (the CLI state comes from SQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from claude_agent_api.checkpoints.router import router as checkpoints_router
from claude_agent_api.models import ApiKey, Checkpoint, SessionCut, SessionFile
from tests.fixtures import SettingsFactory, create_live_key
from tests.support.cluster import Cluster, cluster
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ORIGINAL = "first line\r\nsecond — ünïcode\r\nno newline at the end".encode()
REWIND_PATH = "/api/v1/sessions/{session_id}/rewind"
Marker = Callable[[list[Any]], str]


def mount(app: FastAPI) -> None:
    """Mount the checkpoints router on a live app unless ``app.py`` already does."""
    if not any(getattr(route, "path", None) == REWIND_PATH for route in app.routes):
        app.include_router(checkpoints_router)


def served(server: LiveServer) -> LiveServer:
    mount(server.app)
    return server


async def workspace_of(server: LiveServer, key: str) -> Path:
    async with server.db() as db:
        digest = hashlib.sha256(key.encode()).hexdigest()
        row = (await db.execute(select(ApiKey).where(ApiKey.digest == digest))).scalar_one()
    return server.settings.effective_workspace_root / str(row.id)


def turn_one(project: Path, marker: Marker) -> str:
    steps = [
        {"tool_use": {"name": "Write", "input": {"file_path": str(project / "notes.txt"), "content": "notes\n"}}},
        "Wrote notes.",
    ]
    return "first turn: take notes\n" + marker(steps)


def turn_two(project: Path, marker: Marker) -> str:
    target = str(project / "orig.txt")
    steps = [
        {"tool_use": {"name": "Read", "input": {"file_path": target}}},
        {"tool_use": {"name": "Edit", "input": {"file_path": target, "old_string": "first", "new_string": "EDITED"}}},
        {"tool_use": {"name": "Write", "input": {"file_path": str(project / "created.txt"), "content": "new\n"}}},
        "Edited and created.",
    ]
    return "second turn: edit and create\n" + marker(steps)


async def ask(client: httpx.AsyncClient, prompt: str, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": prompt,
        "cwd": "proj",
        "permission_mode": "bypassPermissions",
        "enable_file_checkpointing": True,
    }
    if session_id:
        body["session_id"] = session_id
    response = await client.post("/api/v1/query/single", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "completed", result
    return result


async def two_turns(client: httpx.AsyncClient, project: Path, marker: Marker) -> str:
    project.mkdir(parents=True, exist_ok=True)
    (project / "orig.txt").write_bytes(ORIGINAL)
    sid = str((await ask(client, turn_one(project, marker)))["session_id"])
    await ask(client, turn_two(project, marker), sid)
    assert (project / "orig.txt").read_bytes() != ORIGINAL and (project / "created.txt").exists()
    return sid


async def checkpoints(client: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/sessions/{sid}/checkpoints")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def assert_rewound(project: Path) -> None:
    assert (project / "orig.txt").read_bytes() == ORIGINAL
    assert not (project / "created.txt").exists()
    assert (project / "notes.txt").read_text() == "notes\n"


async def rewind(client: httpx.AsyncClient, sid: str, checkpoint: str, **extra: Any) -> httpx.Response:
    return await client.post(f"/api/v1/sessions/{sid}/rewind", json={"checkpoint_id": checkpoint, **extra})


async def test_rewind_on_the_same_instance_restores_files_and_lists_checkpoints(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    project = await workspace_of(served(live), live_key) / "proj"
    async with live.client(live_key) as client:
        sid = await two_turns(client, project, model_server.marker)
        listed = await checkpoints(client, sid)
        assert [c["prompt"] for c in listed] == ["first turn: take notes", "second turn: edit and create"]
        assert [c["files_changed"] for c in listed] == [["proj/notes.txt"], ["proj/orig.txt", "proj/created.txt"]]
        response = await rewind(client, sid, listed[1]["id"])
        assert response.status_code == 200, response.text
        assert response.json()["files"] == ["proj/orig.txt", "proj/created.txt"]
    assert_rewound(project)
    async with live.db() as db:
        rows = (await db.scalars(select(SessionFile).where(SessionFile.session_id == sid))).all()
        stored = await db.scalars(select(Checkpoint.user_message_uuid).where(Checkpoint.session_id == sid))
        assert set(stored) == {c["id"] for c in listed}
    paths = [row.path for row in rows]
    assert any(p.startswith("projects/") and p.endswith(f"{sid}.jsonl") for p in paths)
    backups = [row for row in rows if row.path.startswith(f"file-history/{sid}/")]
    assert any(row.content == ORIGINAL for row in backups)  # the pre-edit copy of orig.txt
    assert all(row.size == len(row.content) and row.digest == hashlib.sha256(row.content).hexdigest() for row in rows)


async def test_rewind_after_a_restart(e2e_settings: SettingsFactory, model_server: Any) -> None:
    settings = e2e_settings()
    with live_server(settings) as first:
        key = await create_live_key(served(first))
        project = await workspace_of(first, key) / "proj"
        async with first.client(key) as client:
            sid = await two_turns(client, project, model_server.marker)
            listed = await checkpoints(client, sid)
    with live_server(settings) as second:
        async with served(second).client(key) as client:
            assert await checkpoints(client, sid) == listed
            response = await rewind(client, sid, listed[1]["id"])
            assert response.status_code == 200, response.text
    assert_rewound(project)


async def test_truncating_the_conversation_continues_from_the_checkpoint(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    project = await workspace_of(served(live), live_key) / "proj"
    async with live.client(live_key) as client:
        sid = await two_turns(client, project, model_server.marker)
        listed = await checkpoints(client, sid)
        response = await rewind(client, sid, listed[1]["id"], truncate_conversation=True)
        assert response.status_code == 200 and response.json()["truncated"] is True
        assert_rewound(project)
        async with live.db() as db:
            cut = await db.get(SessionCut, sid)
            assert cut is not None and cut.checkpoint_id == listed[1]["id"] and cut.resume_at
        assert [c["id"] for c in await checkpoints(client, sid)] == [listed[0]["id"]]

        third = await ask(client, "third turn " + model_server.marker(["Back at turn one."]), sid)
        assert third["session_id"] == sid
    last = [r for r in model_server.requests(session_id=sid) if r["kind"] == "main"][-1]
    history = json.dumps(last["body"]["messages"])
    assert "first turn: take notes" in history and "third turn" in history
    assert "second turn: edit and create" not in history
    async with live.db() as db:
        assert await db.get(SessionCut, sid) is None
    async with live.client(live_key) as client:
        assert [c["prompt"] for c in await checkpoints(client, sid)][:1] == ["first turn: take notes"]


async def test_rewind_refusals(live: LiveServer, live_key: str, model_server: Any) -> None:
    project = await workspace_of(served(live), live_key) / "proj"
    project.mkdir(parents=True, exist_ok=True)
    other = await create_live_key(live, "other")
    async with live.client(live_key) as client, live.client(other) as stranger:
        sid = str((await ask(client, turn_one(project, model_server.marker)))["session_id"])
        [checkpoint] = await checkpoints(client, sid)

        unknown = await rewind(client, sid, "00000000-0000-4000-8000-000000000000")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "CHECKPOINT_NOT_FOUND"
        for response in (
            await stranger.get(f"/api/v1/sessions/{sid}/checkpoints"),
            await rewind(stranger, sid, checkpoint["id"]),
        ):
            assert response.status_code == 404 and response.json()["error"]["code"] == "SESSION_NOT_FOUND"

        plain = await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["hi"])})
        disabled = await client.get(f"/api/v1/sessions/{plain.json()['session_id']}/checkpoints")
        assert disabled.status_code == 409 and disabled.json()["error"]["code"] == "CHECKPOINTING_DISABLED"

        slow = [{"tool_use": {"name": "Bash", "input": {"command": "python3 -c 'import time; time.sleep(25)'"}}}]
        running = asyncio.create_task(ask_raw(client, model_server.marker([*slow, "late"]), sid))
        for _ in range(200):
            if (await client.get(f"/api/v1/sessions/{sid}")).json()["status"] == "running":
                break
            await asyncio.sleep(0.05)
        locked = await rewind(client, sid, checkpoint["id"])
        assert locked.status_code == 409 and locked.json()["error"]["code"] == "SESSION_LOCKED"
        await client.post(f"/api/v1/sessions/{sid}/interrupt")
        await running
    assert (project / "notes.txt").read_text() == "notes\n"  # nothing was rewound


async def ask_raw(client: httpx.AsyncClient, prompt: str, sid: str) -> httpx.Response:
    body = {"prompt": prompt, "session_id": sid, "permission_mode": "bypassPermissions"}
    return await client.post("/api/v1/query/single", json={**body, "enable_file_checkpointing": True})


@pytest.fixture
def two(tmp_path: Path, model_server: Any) -> Iterator[Cluster]:
    with cluster(tmp_path / "cluster", model_server.base_url) as c:
        yield c


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_session_checkpointed_on_a_rewinds_on_b(two: Cluster, model_server: Any) -> None:
    async with two.client(two.a, two.admin_key) as admin:
        created = await admin.post("/api/v1/keys", json={"name": "tenant"})
    key, key_id = created.json()["key"], created.json()["id"]
    project = two.root / "shared-workspaces" / key_id / "proj"
    async with two.client(two.a, key) as a, two.client(two.b, key) as b:
        mount_check = await b.get("/api/v1/sessions/00000000-0000-4000-8000-000000000000/checkpoints")
        assert mount_check.json()["error"]["code"] == "SESSION_NOT_FOUND", "app.py does not mount the router"
        sid = await two_turns(a, project, model_server.marker)
        b_cli = two.data_dir("b") / "cli"
        assert not list(b_cli.glob(f"*/config/file-history/{sid}"))  # B has never seen this session
        listed = await checkpoints(b, sid)
        assert [c["files_changed"] for c in listed][1] == ["proj/orig.txt", "proj/created.txt"]
        response = await rewind(b, sid, listed[1]["id"])
        assert response.status_code == 200, response.text
        assert_rewound(project)
        # B's config directory now holds the session's backups, restored from SQL.
        assert list(b_cli.glob(f"*/config/file-history/{sid}/*"))
        # And A, its own copy gone, resumes the session from SQL too.
        shutil.rmtree(two.data_dir("a") / "cli" / key_id / "config")
        (two.data_dir("a") / "cli" / key_id / "config").mkdir(mode=0o700)
        third = await ask(a, "third turn " + model_server.marker(["still here"]), sid)
        assert third["text"] == "still here"
    last = [r for r in model_server.requests(session_id=sid) if r["kind"] == "main"][-1]
    assert "second turn: edit and create" in json.dumps(last["body"]["messages"])
