"""Until runs outlive their connection, a client that disconnects ends its run and leaves no process behind."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from claude_agent_api.models import Run
from tests.support.live import LiveServer
from tests.support.processes_cli import cli_processes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_disconnecting_ends_the_run_and_its_processes(live: LiveServer, live_key: str, model_server: Any) -> None:
    steps = [
        {"tool_use": {"name": "Bash", "input": {"command": "sleep 30 && echo late", "description": "wait"}}},
        "late",
    ]
    run_id = None
    working: list[int] = []
    async with (
        live.client(live_key) as client,
        client.stream(
            "POST", "/api/v1/query", json={"prompt": model_server.marker(steps), "permission_mode": "bypassPermissions"}
        ) as response,
    ):
        run_id = response.headers["X-Run-ID"]
        async for line in response.aiter_lines():
            if line.startswith("event: message"):
                working = cli_processes(live.settings.data_dir)
                break  # the agent is working: hang up
    assert working, "no agent process was running when the client hung up"

    async def finished() -> bool:
        async with live.db() as db:
            run = await db.get(Run, run_id)
            return run is not None and run.status == "interrupted"

    assert await wait_for(finished), "the run was not ended by the disconnect"

    async def no_processes() -> bool:
        return cli_processes(live.settings.data_dir) == []

    assert await wait_for(no_processes), cli_processes(live.settings.data_dir)
