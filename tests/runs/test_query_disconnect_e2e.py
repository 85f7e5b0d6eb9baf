"""Runs outlive their connection, unless the client asks otherwise: then a disconnect ends the run and leaves no
process behind. A dropped stream is rejoined with Last-Event-ID (or ?after=) with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from claude_agent_api.models import Run
from tests.support.live import LiveServer, parse_sse
from tests.support.processes_cli import cli_processes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_disconnecting_with_on_disconnect_cancel_ends_the_run_and_its_processes(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    steps = [
        {
            "tool_use": {
                "name": "Bash",
                "input": {"command": "python3 -c 'import time; time.sleep(30)'", "description": "wait"},
            }
        },
        "late",
    ]
    run_id = None
    working: list[int] = []
    async with (
        live.client(live_key) as client,
        client.stream(
            "POST",
            "/api/v1/query",
            json={
                "prompt": model_server.marker(steps),
                "permission_mode": "bypassPermissions",
                "on_disconnect": "cancel",
            },
        ) as response,
    ):
        run_id = response.headers["X-Run-ID"]
        async for line in response.aiter_lines():
            if line.startswith("event: message"):
                for _ in range(50):  # until the tool's own process runs
                    if working := cli_processes(live.settings.data_dir, "time.sleep(30)"):
                        break
                    await asyncio.sleep(0.1)
                break  # the agent is working: hang up
    assert working, "no agent process was running when the client hung up"

    async def finished() -> bool:
        async with live.db() as db:
            run = await db.get(Run, run_id)
            return run is not None and run.status == "interrupted"

    assert await wait_for(finished), "the run was not ended by the disconnect"

    async def no_processes() -> bool:
        return cli_processes(live.settings.data_dir) == []  # neither the tool nor the CLI

    assert await wait_for(no_processes), cli_processes(live.settings.data_dir)


async def test_a_run_outlives_its_connection_and_the_stream_is_rejoined_without_gap(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    steps = [
        {"tool_use": {"name": "Bash", "input": {"command": "echo one", "description": "one"}}},
        {"delay": 1.0, "tool_use": {"name": "Bash", "input": {"command": "echo two > two.txt", "description": "two"}}},
        "Finished.",
    ]
    seen: list[dict[str, Any]] = []
    async with live.client(live_key) as client:
        async with client.stream(
            "POST", "/api/v1/query", json={"prompt": model_server.marker(steps), "permission_mode": "bypassPermissions"}
        ) as response:
            session_id, run_id = response.headers["X-Session-ID"], response.headers["X-Run-ID"]
            buffer = ""
            async for line in response.aiter_lines():
                buffer += line + "\n"
                if line == "" and "data:" in buffer:
                    seen.extend(parse_sse(buffer))
                    buffer = ""
                if len(seen) >= 3:
                    break  # the laptop goes to sleep
        last = int(seen[-1]["id"])

        async def finished() -> bool:
            async with live.db() as db:
                run = await db.get(Run, run_id)
                return run is not None and run.status == "completed"

        assert await wait_for(finished), "the run did not go on after the client left"
        rejoined = await client.get(f"/api/v1/sessions/{session_id}/stream", headers={"Last-Event-ID": str(last)})
        rest = parse_sse(rejoined.text)
        by_query = parse_sse((await client.get(f"/api/v1/sessions/{session_id}/stream?after={last}")).text)
        everything = parse_sse((await client.get(f"/api/v1/sessions/{session_id}/stream?after=0")).text)
    assert [int(f["id"]) for f in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["status"] == "completed"
    assert by_query == rest
    assert [f["data"] for f in seen + rest] == [f["data"] for f in everything]


async def test_a_finished_runs_events_come_from_sql_once_the_log_is_gone(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    async with live.client(live_key) as client:
        done = await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["kept"])})
        session_id, run_id = done.json()["session_id"], done.json()["run_id"]
        live_frames = parse_sse((await client.get(f"/api/v1/sessions/{session_id}/stream")).text)
        live.call(live.state.coordination.delete_log(f"run:{run_id}"))  # the retention window has passed
        from_sql = parse_sse((await client.get(f"/api/v1/sessions/{session_id}/stream?after=2")).text)
    assert live_frames[-1]["event"] == "done"
    assert from_sql == live_frames[2:]
