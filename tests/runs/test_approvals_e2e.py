"""Approvals, questions and mid-run control through the API, with the real CLI asking."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from claude_agent_api.models import AgentSession, Run
from tests.fixtures import create_live_key
from tests.runs.test_query_e2e import key_workspace
from tests.support.live import LiveServer
from tests.support.watch import StreamWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def write_steps(path: Any, content: str = "approved") -> list[Any]:
    return [{"tool_use": {"name": "Write", "input": {"file_path": str(path), "content": content}}}, "Finished."]


def tool_results(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for f in frames if f["event"] == "message" for b in f["data"]["content"] if b["type"] == "tool_result"]


async def test_an_approved_tool_runs_and_the_session_shows_requires_action_meanwhile(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    target = await key_workspace(live, live_key) / "ap" / "a.txt"
    async with live.client(live_key) as client:
        watcher = StreamWatcher(
            client, "POST", "/api/v1/query", json={"prompt": model_server.marker(write_steps(target)), "cwd": "ap"}
        )
        request = await watcher.wait_for("permission_request")
        assert request["tool_name"] == "Write" and request["input"]["file_path"] == str(target)
        assert request["expires_at"] and request["tool_use_id"]
        session_id = request["session_id"]
        assert (await client.get(f"/api/v1/sessions/{session_id}")).json()["status"] == "requires_action"
        async with live.db() as db:
            run = await db.get(Run, request["run_id"])
            assert run is not None and run.status == "requires_action"
        assert not target.exists()

        answer = await client.post(
            f"/api/v1/sessions/{session_id}/permissions/{request['request_id']}", json={"decision": "allow"}
        )
        assert answer.status_code == 200 and answer.json()["decision"] == "allow"
        frames = await watcher.finish()
        again = await client.post(
            f"/api/v1/sessions/{session_id}/permissions/{request['request_id']}", json={"decision": "deny"}
        )
    assert target.read_text() == "approved"
    assert watcher.of("done")[0]["status"] == "completed"
    assert tool_results(frames)[0]["is_error"] in (None, False)
    assert again.status_code == 409 and again.json()["error"]["code"] == "APPROVAL_ALREADY_ANSWERED"
    async with live.db() as db:
        session = await db.get(AgentSession, session_id)
    assert session is not None and session.status == "idle"


async def test_a_denied_tool_does_not_run_and_the_reason_reaches_the_model(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    target = await key_workspace(live, live_key) / "deny" / "a.txt"
    async with live.client(live_key) as client:
        watcher = StreamWatcher(
            client, "POST", "/api/v1/query", json={"prompt": model_server.marker(write_steps(target)), "cwd": "deny"}
        )
        request = await watcher.wait_for("permission_request")
        await client.post(
            f"/api/v1/sessions/{request['session_id']}/permissions/{request['request_id']}",
            json={"decision": "deny", "message": "Not in this folder, please."},
        )
        frames = await watcher.finish()
    assert not target.exists()
    result = tool_results(frames)[0]
    assert result["is_error"] is True and "Not in this folder" in json.dumps(result["content"])


async def test_an_unanswered_request_expires_as_a_deny(live: LiveServer, live_key: str, model_server: Any) -> None:
    target = await key_workspace(live, live_key) / "exp" / "a.txt"
    async with live.client(live_key) as client:
        watcher = StreamWatcher(
            client,
            "POST",
            "/api/v1/query",
            json={"prompt": model_server.marker(write_steps(target)), "cwd": "exp", "approval_timeout_seconds": 1},
        )
        request = await watcher.wait_for("permission_request")
        frames = await watcher.finish()
        late = await client.post(
            f"/api/v1/sessions/{request['session_id']}/permissions/{request['request_id']}", json={"decision": "allow"}
        )
    assert not target.exists()
    assert tool_results(frames)[0]["is_error"] is True
    assert any(f["data"].get("subtype") == "request_expired" for f in frames if f["event"] == "message")
    assert late.status_code == 409


async def test_a_question_is_answered_and_the_model_hears_the_answer(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    question = {
        "question": "Which color should the button be?",
        "header": "Color",
        "options": [{"label": "Blue", "description": "calm"}, {"label": "Red", "description": "bold"}],
        "multiSelect": False,
    }
    steps = [{"tool_use": {"name": "AskUserQuestion", "input": {"questions": [question]}}}, "Blue it is."]
    token = model_server.add_script(steps)
    async with live.client(live_key) as client:
        watcher = StreamWatcher(
            client,
            "POST",
            "/api/v1/query",
            json={"prompt": f"ask me ({token})", "permission_mode": "bypassPermissions"},
        )
        asked = await watcher.wait_for("question")
        assert asked["questions"][0]["question"] == question["question"]
        sid = asked["session_id"]
        wrong = await client.post(
            f"/api/v1/sessions/{sid}/answer", json={"question_id": asked["question_id"], "answers": {"Other?": "x"}}
        )
        assert wrong.status_code == 422
        ok = await client.post(
            f"/api/v1/sessions/{sid}/answer",
            json={"question_id": asked["question_id"], "answers": {question["question"]: "Blue"}},
        )
        assert ok.status_code == 200
        await watcher.finish()
    followup = [r for r in model_server.requests(token=token) if r["kind"] == "main"][-1]
    assert "Blue" in json.dumps(followup["body"]["messages"][-1])


async def test_answers_for_another_keys_session_are_404_and_unknown_requests_404(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    target = await key_workspace(live, live_key) / "own" / "a.txt"
    other = await create_live_key(live, "other")
    async with live.client(live_key) as client, live.client(other) as intruder:
        watcher = StreamWatcher(
            client, "POST", "/api/v1/query", json={"prompt": model_server.marker(write_steps(target)), "cwd": "own"}
        )
        request = await watcher.wait_for("permission_request")
        sid, rid = request["session_id"], request["request_id"]
        stolen = await intruder.post(f"/api/v1/sessions/{sid}/permissions/{rid}", json={"decision": "allow"})
        unknown = await client.post(
            f"/api/v1/sessions/{sid}/permissions/4f1e0c1a-9a7b-4c1d-8e2f-000000000000", json={"decision": "allow"}
        )
        assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "SESSION_NOT_FOUND"
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "APPROVAL_NOT_FOUND"
        await client.post(f"/api/v1/sessions/{sid}/permissions/{rid}", json={"decision": "deny"})
        await watcher.finish()
    assert not target.exists()


async def test_control_changes_the_permission_mode_of_the_running_session(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    workspace = await key_workspace(live, live_key)
    first, second = workspace / "ctl" / "one.txt", workspace / "ctl" / "two.txt"
    steps = [
        {"tool_use": {"name": "Write", "input": {"file_path": str(first), "content": "1"}}},
        {"tool_use": {"name": "Write", "input": {"file_path": str(second), "content": "2"}}},
        "Both written.",
    ]
    async with live.client(live_key) as client:
        watcher = StreamWatcher(
            client, "POST", "/api/v1/query", json={"prompt": model_server.marker(steps), "cwd": "ctl"}
        )
        request = await watcher.wait_for("permission_request")
        sid = request["session_id"]
        changed = await client.post(f"/api/v1/sessions/{sid}/control", json={"permission_mode": "acceptEdits"})
        assert changed.status_code == 200
        assert changed.json() == {
            "session_id": sid,
            "run_id": request["run_id"],
            "permission_mode": "acceptEdits",
            "model": None,
        }
        await client.post(f"/api/v1/sessions/{sid}/permissions/{request['request_id']}", json={"decision": "allow"})
        await watcher.finish()
        idle = await client.post(f"/api/v1/sessions/{sid}/control", json={"permission_mode": "default"})
        empty = await client.post(f"/api/v1/sessions/{sid}/control", json={})
    # The second Write needed no approval once edits were accepted.
    assert watcher.events().count("permission_request") == 1
    assert first.read_text() == "1" and second.read_text() == "2"
    assert idle.status_code == 409 and idle.json()["error"]["code"] == "NO_ACTIVE_RUN"
    assert empty.status_code == 422
    await asyncio.sleep(0)
