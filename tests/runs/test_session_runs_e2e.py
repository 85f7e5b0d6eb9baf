"""One run per session, multitask policies, lock expiry, resume, and warm agents — end to end."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from claude_agent_api.models import AgentSession, Run
from tests.runs.test_query_e2e import events_of, stream
from tests.support.live import LiveServer, parse_sse

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# A tool that runs for 20 s (the CLI refuses `sleep N && …` forms itself).
SLOW_COMMAND = "python3 -c 'import time; time.sleep(20)'"
SLOW = [{"tool_use": {"name": "Bash", "input": {"command": SLOW_COMMAND, "description": "slow"}}}, "late"]


def metric(text: str, name: str, label: str) -> float:
    match = re.search(rf'^{name}\{{kind="{label}"\}} ([0-9.]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def start_streaming(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[str, str, asyncio.Task[str]]:
    """Start a run, return its ids once the agent is working, and a task that reads the rest of the stream."""
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    async def read() -> str:
        text = ""
        async with client.stream("POST", "/api/v1/query", json=body) as response:
            async for line in response.aiter_lines():
                text += line + "\n"
                if line.startswith("event: message") and not ready.done():
                    ready.set_result((response.headers["X-Session-ID"], response.headers["X-Run-ID"]))
        return text

    task = asyncio.create_task(read())
    session_id, run_id = await asyncio.wait_for(ready, 30)
    return session_id, run_id, task


async def test_a_follow_up_turn_reuses_the_warm_agent(live: LiveServer, live_key: str, model_server: Any) -> None:
    first, _ = await stream(live, live_key, {"prompt": "one " + model_server.marker(["first"])})
    sid = first.headers["X-Session-ID"]
    async with live.client(live_key) as client:
        before = (await client.get("/metrics")).text
        second = await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false", json={"prompt": "two " + model_server.marker(["second"])}
        )
        after = (await client.get("/metrics")).text
    assert second.status_code == 200 and second.json()["text"] == "second"
    assert metric(after, "caa_agent_turns_total", "warm") == metric(before, "caa_agent_turns_total", "warm") + 1
    assert metric(after, "caa_agent_turns_total", "cold") == metric(before, "caa_agent_turns_total", "cold")
    # The warm process still has the whole conversation.
    last = [r for r in model_server.requests(session_id=sid) if r["kind"] == "main"][-1]
    assert "one" in str(last["body"]["messages"][0])

    # A turn that needs another process (different tools) replaces the warm agent.
    async with live.client(live_key) as client:
        third = await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false",
            json={"prompt": model_server.marker(["third"]), "tools": ["Read"]},
        )
        final = (await client.get("/metrics")).text
    assert third.json()["text"] == "third"
    assert metric(final, "caa_agent_turns_total", "cold") == metric(after, "caa_agent_turns_total", "cold") + 1


async def test_a_concurrent_prompt_is_409_with_retry_after(live: LiveServer, live_key: str, model_server: Any) -> None:
    async with live.client(live_key) as client:
        sid, run_id, reader = await start_streaming(
            client, {"prompt": model_server.marker(SLOW), "permission_mode": "bypassPermissions"}
        )
        response = await client.post(f"/api/v1/sessions/{sid}/resume", json={"prompt": "again"})
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "SESSION_LOCKED" and error["details"]["run_id"] == run_id
        assert 1 <= int(response.headers["Retry-After"]) <= 30
        # The refused prompt left no run behind.
        async with live.db() as db:
            from sqlalchemy import func, select

            assert (await db.execute(select(func.count()).select_from(Run).where(Run.session_id == sid))).scalar() == 1
        await client.post(f"/api/v1/sessions/{sid}/interrupt")
        await asyncio.wait_for(reader, 30)


async def test_multitask_interrupt_stops_the_running_prompt_then_starts(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    async with live.client(live_key) as client:
        sid, first_run, reader = await start_streaming(
            client, {"prompt": model_server.marker(SLOW), "permission_mode": "bypassPermissions"}
        )
        started = time.monotonic()
        second = await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false",
            json={"prompt": "instead " + model_server.marker(["switched"]), "multitask": "interrupt"},
        )
        assert time.monotonic() - started < 15  # not the 20 s the first prompt's tool would take
        assert second.status_code == 200 and second.json()["text"] == "switched"
        first_frames = parse_sse(await asyncio.wait_for(reader, 30))
    assert events_of(first_frames, "done")[0]["status"] == "interrupted"
    async with live.db() as db:
        run = await db.get(Run, first_run)
    assert run is not None and run.status == "interrupted"


async def test_multitask_enqueue_starts_when_the_running_prompt_ends(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    slow = [{"delay": 1.5, "text": "first done"}]
    async with live.client(live_key) as client:
        first = asyncio.create_task(client.post("/api/v1/query/single", json={"prompt": model_server.marker(slow)}))
        await asyncio.sleep(0.6)
        sid = None
        async with live.db() as db:
            from sqlalchemy import select

            while sid is None:
                sid = (await db.execute(select(AgentSession.id))).scalars().first()
        second = await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false",
            json={"prompt": model_server.marker(["second done"]), "multitask": "enqueue"},
        )
        first_body = (await first).json()
    assert first_body["text"] == "first done" and second.json()["text"] == "second done"
    async with live.db() as db:
        runs = {r.id: r for r in (await db.execute(__import__("sqlalchemy").select(Run))).scalars()}
    first_run, second_run = runs[first_body["run_id"]], runs[second.json()["run_id"]]
    assert first_run.finished_at is not None and second_run.started_at is not None
    assert second_run.started_at >= first_run.finished_at
    assert second_run.status == "completed"


async def test_a_crashed_instances_lock_expires(live: LiveServer, live_key: str, model_server: Any) -> None:
    first, _ = await stream(live, live_key, {"prompt": model_server.marker(["hello"])})
    sid = first.headers["X-Session-ID"]
    # Another instance took the session and died without releasing it: its lock has a TTL.
    assert live.call(live.state.coordination.acquire_lock(f"session:{sid}", 2.0, "run-of-a-crashed-instance"))
    async with live.client(live_key) as client:
        locked = await client.post(f"/api/v1/sessions/{sid}/resume", json={"prompt": "x"})
        assert locked.status_code == 409 and locked.json()["error"]["details"]["run_id"] == "run-of-a-crashed-instance"
        await asyncio.sleep(float(locked.headers["Retry-After"]) + 0.5)
        later = await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false", json={"prompt": model_server.marker(["back"])}
        )
    assert later.status_code == 200 and later.json()["text"] == "back"


async def test_a_warm_agent_does_not_carry_a_wider_permission_mode_into_the_next_turn(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    from tests.runs.test_query_e2e import key_workspace
    from tests.support.watch import StreamWatcher

    target = await key_workspace(live, live_key) / "modes" / "x.txt"
    bash = [{"tool_use": {"name": "Bash", "input": {"command": "true", "description": "noop"}}}, "ok"]
    write = [{"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "x"}}}, "ok"]
    async with live.client(live_key) as client:
        first = await client.post(
            "/api/v1/query/single",
            json={"prompt": model_server.marker(bash), "cwd": "modes", "permission_mode": "bypassPermissions"},
        )
        sid = first.json()["session_id"]
        watcher = StreamWatcher(
            client, "POST", f"/api/v1/sessions/{sid}/resume", json={"prompt": model_server.marker(write)}
        )
        request = await watcher.wait_for("permission_request")
        assert request["tool_name"] == "Write"
        await client.post(f"/api/v1/sessions/{sid}/permissions/{request['request_id']}", json={"decision": "deny"})
        await watcher.finish()
        metrics = (await client.get("/metrics")).text
    assert metric(metrics, "caa_agent_turns_total", "warm") >= 1  # it was the same process
    assert not target.exists()


async def test_a_warm_agent_can_be_widened_to_bypass_permissions_for_a_turn(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    from tests.runs.test_query_e2e import key_workspace

    target = await key_workspace(live, live_key) / "widen" / "x.txt"
    write = [{"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "x"}}}, "ok"]
    async with live.client(live_key) as client:
        first = await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["hi"]), "cwd": "widen"})
        sid = first.json()["session_id"]
        second = await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false",
            json={"prompt": model_server.marker(write), "permission_mode": "bypassPermissions"},
        )
    assert second.status_code == 200 and second.json()["status"] == "completed", second.text
    assert target.read_text() == "x"
