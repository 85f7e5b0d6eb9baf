"""Real-CLI tests: ``claude_agent_sdk`` drives the bundled Claude Code CLI against the scripted server.

Each run starts a CLI process (~0.5-1 s), so the set is small. Every test gets a private cwd, HOME,
CLAUDE_CONFIG_DIR and CLAUDE_CODE_TMPDIR (0700) under a short temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AgentDefinition,
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    Message,
    ProcessError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    UserMessage,
    query,
)

from .server import ModelServer

pytestmark = pytest.mark.e2e
RUN_TIMEOUT = 60


@pytest.fixture
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ms-") as path:
        (Path(path) / "work").mkdir()
        yield Path(path)


def options(server: ModelServer, root: Path, **extra: Any) -> ClaudeAgentOptions:
    env = server.isolated_env(root, CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS="1")
    return ClaudeAgentOptions(
        cwd=str(root / "work"),
        env=env,
        permission_mode="bypassPermissions",
        setting_sources=[],
        **extra,
    )


async def run_query(prompt: str, opts: ClaudeAgentOptions) -> list[Message]:
    messages: list[Message] = []
    async with asyncio.timeout(RUN_TIMEOUT):
        try:
            async for message in query(prompt=prompt, options=opts):
                messages.append(message)
        except ProcessError:  # error results are yielded, then raised as ResultError
            if not any(isinstance(m, ResultMessage) for m in messages):
                raise
    return messages


async def run_until_idle(prompt: str, opts: ClaudeAgentOptions) -> list[Message]:
    """Send ``prompt`` and collect messages until the session is idle (background work included)."""
    messages: list[Message] = []
    async with asyncio.timeout(RUN_TIMEOUT), ClaudeSDKClient(opts) as client:
        await client.query(prompt)
        async for message in client.receive_messages():
            messages.append(message)
            if isinstance(message, SystemMessage) and message.data.get("state") == "idle":
                break
    return messages


def results(messages: list[Message]) -> list[ResultMessage]:
    return [m for m in messages if isinstance(m, ResultMessage)]


def texts(messages: list[Message], parent: str | None = None) -> list[str]:
    return [
        block.text
        for m in messages
        if isinstance(m, AssistantMessage) and m.parent_tool_use_id == parent
        for block in m.content
        if isinstance(block, TextBlock)
    ]


def tool_result(messages: list[Message], tool_use_id: str) -> ToolResultBlock | None:
    return next(
        (
            block
            for m in messages
            if isinstance(m, UserMessage) and isinstance(m.content, list)
            for block in m.content
            if isinstance(block, ToolResultBlock) and block.tool_use_id == tool_use_id
        ),
        None,
    )


async def test_write_tool_then_text(model_server: ModelServer, root: Path) -> None:
    target = root / "work" / "hello.txt"
    steps = [
        {"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "hello\n"}}},
        {"text": "I wrote hello.txt."},
    ]
    started = time.monotonic()
    messages = await run_query("Write hello.txt " + model_server.marker(steps), options(model_server, root))
    elapsed = time.monotonic() - started
    assert target.read_text() == "hello\n"
    [result] = results(messages)
    assert (result.subtype, result.is_error, result.num_turns) == ("success", False, 2)
    assert result.result == "I wrote hello.txt."
    assert result.usage is not None
    assert result.usage["input_tokens"] > 0
    assert result.usage["output_tokens"] > 0
    assert result.total_cost_usd is not None
    assert result.total_cost_usd > 0
    recorded = model_server.requests(session_id=result.session_id, kind="main")
    assert [r["step"] for r in recorded] == [0, 1]
    tool_id = recorded[0]["reply"]["content"][0]["id"]
    tool_result = recorded[1]["body"]["messages"][-1]["content"][0]
    assert (tool_result["type"], tool_result["tool_use_id"]) == ("tool_result", tool_id)
    assert elapsed < 30


@pytest.mark.parametrize("status", [500, 401])
async def test_error_step_gives_error_result(model_server: ModelServer, root: Path, status: int) -> None:
    steps = [{"error": {"status": status, "message": f"scripted {status}"}}]
    started = time.monotonic()
    messages = await run_query("fail " + model_server.marker(steps), options(model_server, root))
    assert time.monotonic() - started < 15
    [result] = results(messages)
    assert result.is_error
    assert result.api_error_status == status
    errors = [m.error for m in messages if isinstance(m, AssistantMessage) and m.error]
    assert errors == ["server_error" if status == 500 else "authentication_failed"]


async def test_foreground_subagent_gets_its_own_steps(model_server: ModelServer, root: Path) -> None:
    report = root / "work" / "report.txt"
    call = {"subagent_type": "checker", "description": "check", "prompt": "Check it", "run_in_background": False}
    write = {"file_path": str(report), "content": "ok"}
    token = model_server.add_script(
        [
            {"tool_use": {"name": "Agent", "input": call}},
            {"agent": "You are checker-7", "tool_use": {"name": "Write", "input": write}},
            {"agent": "You are checker-7", "text": "Checked: ok"},
            {"text": "The checker says ok."},
        ]
    )
    checker = AgentDefinition(description="Checks things", prompt="You are checker-7. Check.", tools=["Write"])
    opts = options(model_server, root, agents={"checker": checker})
    messages = await run_until_idle(f"Check it ({token})", opts)
    assert report.read_text() == "ok"
    [result] = results(messages)
    assert result.result == "The checker says ok."
    agent_call = next(r for r in model_server.requests(token=token) if r["lane"] is None)["reply"]["content"][0]
    assert "Checked: ok" in str(tool_result(messages, agent_call["id"]))  # the hand-back to the main loop
    recorded = model_server.requests(token=token)
    assert [(r["lane"], r["step"]) for r in recorded] == [
        (None, 0),
        ("You are checker-7", 0),
        ("You are checker-7", 1),
        (None, 1),
    ]
    assert all(r["agent_id"] for r in recorded if r["lane"])
    assert not any(r["agent_id"] for r in recorded if r["lane"] is None)


async def test_background_subagent_gets_its_own_steps(model_server: ModelServer, root: Path) -> None:
    session_id = str(uuid.uuid4())
    call = {"description": "summarise", "prompt": "Summarise BG-TASK-42", "run_in_background": True}
    model_server.add_script(
        [
            {"tool_use": {"name": "Agent", "input": call}},
            {"text": "Started a background agent."},
            {"agent": "BG-TASK-42", "text": "Summary: fine", "delay": 0.2},
            {"text": "The background agent reported: fine."},
        ],
        session_id=session_id,
    )
    messages = await run_until_idle("Summarise in the background", options(model_server, root, session_id=session_id))
    first, second = results(messages)
    assert first.result == "Started a background agent."
    assert second.result == "The background agent reported: fine."
    recorded = model_server.requests(session_id=session_id, kind="main")
    lanes = [(r["lane"], r["step"]) for r in recorded]
    assert sorted(lanes, key=str) == sorted([(None, 0), (None, 1), ("BG-TASK-42", 0), (None, 2)], key=str)
    assert lanes[-1] == (None, 2)  # the wake-up turn comes after the subagent finished
    sub = next(r for r in recorded if r["lane"])
    assert sub["agent_id"]
    assert sub["body"]["messages"][0]["content"][-1]["text"] == "Summarise BG-TASK-42"
    agent_call_id = next(r for r in recorded if r["step"] == 0 and r["lane"] is None)["reply"]["content"][0]["id"]
    assert texts(messages, parent=agent_call_id) == ["Summary: fine"]  # background subagent text is forwarded
