"""SIGTERM during a run: the client gets the run's final events, the run is saved interrupted, and the session
resumes on the next start."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import PROCESSES, server_process
from tests.support.watch import StreamWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SLOW = [
    {
        "tool_use": {
            "name": "Bash",
            "input": {"command": "python3 -c 'import time; time.sleep(40)'", "description": "slow"},
        }
    },
    "late",
]


async def test_sigterm_interrupts_running_runs_after_the_drain_and_they_resume(
    tmp_path: Path, model_server: Any
) -> None:
    admin = "caa_shutdown_admin_" + uuid.uuid4().hex
    env = {
        "CAA_DATA_DIR": str(tmp_path / "data"),
        "CAA_BOOTSTRAP_ADMIN_KEY": admin,
        "ANTHROPIC_BASE_URL": model_server.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "CAA_AGENT_MAX_RETRIES": "0",
        "CAA_DRAIN_SECONDS": "1",
    }
    with server_process(env, tmp_path, log_path=tmp_path / "first.log") as base:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": admin}, timeout=60) as client:
            key = (await client.post("/api/v1/keys", json={"name": "t"})).json()["key"]
            client.headers["X-API-Key"] = key
            watcher = StreamWatcher(
                client,
                "POST",
                "/api/v1/query",
                json={"prompt": model_server.marker(SLOW), "permission_mode": "bypassPermissions"},
            )
            await watcher.wait_for("message")
            PROCESSES[base].send_signal(signal.SIGTERM)
            frames = await watcher.finish(timeout=60)
        # A clean exit; uvicorn re-raises the SIGTERM it handled so a supervisor sees the cause.
        assert PROCESSES[base].wait(timeout=60) in (0, -signal.SIGTERM)
    done = [f["data"] for f in frames if f["event"] == "done"]
    assert done and done[-1]["status"] == "interrupted", [f["event"] for f in frames]
    session_id = frames[0]["data"]["session_id"]

    with server_process(env, tmp_path, log_path=tmp_path / "second.log") as base:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            detail = (await client.get(f"/api/v1/sessions/{session_id}")).json()
            assert detail["last_run"]["status"] == "interrupted" and detail["status"] == "idle"
            resumed = await client.post(
                f"/api/v1/sessions/{session_id}/resume?stream=false",
                json={"prompt": "again " + model_server.marker(["back"])},
            )
    assert resumed.status_code == 200 and resumed.json()["text"] == "back"
    assert "runs.draining" in (tmp_path / "first.log").read_text()
