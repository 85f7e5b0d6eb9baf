"""Subagents through the API: their messages carry ``parent_tool_use_id``; a background subagent's run ends
with one ``done``, after the second result."""

from __future__ import annotations

from typing import Any

import pytest

from tests.runs.test_query_e2e import events_of, key_workspace, stream
from tests.support.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_foreground_subagent_messages_carry_the_parent_tool_use_id(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    report = await key_workspace(live, live_key) / "fg" / "report.txt"
    call = {"subagent_type": "checker", "description": "check", "prompt": "Check it", "run_in_background": False}
    token = model_server.add_script(
        [
            {"tool_use": {"name": "Agent", "input": call}},
            {
                "agent": "You are checker-7",
                "tool_use": {"name": "Write", "input": {"file_path": str(report), "content": "ok"}},
            },
            {"agent": "You are checker-7", "text": "Checked: ok"},
            "The checker says ok.",
        ]
    )
    agents = {"checker": {"description": "Checks things", "prompt": "You are checker-7. Check.", "tools": ["Write"]}}
    _, frames = await stream(
        live,
        live_key,
        {"prompt": f"check ({token})", "cwd": "fg", "agents": agents, "permission_mode": "bypassPermissions"},
    )
    assert report.read_text() == "ok"
    messages = events_of(frames, "message")
    agent_call = next(b for m in messages for b in m["content"] if b["type"] == "tool_use" and b["name"] == "Agent")
    sub_messages = [m for m in messages if m.get("parent_tool_use_id") == agent_call["id"]]
    assert any(b["type"] == "tool_use" and b["name"] == "Write" for m in sub_messages for b in m["content"])
    assert "checker" in events_of(frames, "init")[0]["agents"]
    assert [r["result"] for r in events_of(frames, "result")] == ["The checker says ok."]
    assert len(events_of(frames, "done")) == 1


async def test_background_subagent_run_ends_after_the_second_result(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    call = {"description": "summarise", "prompt": "Summarise BG-TASK-77", "run_in_background": True}
    token = model_server.add_script(
        [
            {"tool_use": {"name": "Agent", "input": call}},
            "Started a background agent.",
            {"agent": "BG-TASK-77", "text": "Summary: fine", "delay": 0.3},
            "The background agent reported: fine.",
        ]
    )
    _, frames = await stream(live, live_key, {"prompt": f"summarise ({token})", "permission_mode": "bypassPermissions"})
    results = events_of(frames, "result")
    assert [r["result"] for r in results] == ["Started a background agent.", "The background agent reported: fine."]
    kinds = [f["event"] for f in frames]
    assert kinds.count("done") == 1 and kinds[-1] == "done"
    assert kinds.index("done") > max(i for i, k in enumerate(kinds) if k == "result")
    messages = events_of(frames, "message")
    agent_call = next(b for m in messages for b in m["content"] if b["type"] == "tool_use" and b["name"] == "Agent")
    forwarded = [m for m in messages if m.get("parent_tool_use_id") == agent_call["id"]]
    assert any(b.get("text") == "Summary: fine" for m in forwarded for b in m["content"])
    assert events_of(frames, "done")[0]["status"] == "completed"
