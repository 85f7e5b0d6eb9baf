"""Humans in the loop, measured: interrupt request → ``done``, and approval answer → the tool's start.

Three ways, N times each, against the scripted model on 127.0.0.1:

- ``sdk``: the SDK alone in this process (the baseline): ``client.interrupt()`` → the ``ResultMessage``; a
  ``can_use_tool`` callback that returns *allow* → the tool's first instruction.
- ``one instance``: the service (uvicorn, SQLite, in-process coordination): ``POST …/interrupt`` → the ``done``
  frame; ``POST …/permissions/{id}`` → the tool's first instruction.
- ``two instances``: the run on instance A, the interrupt / answer sent to instance B (PostgreSQL + Redis;
  skipped when they are not reachable).

The tool records its own start time (``python3 -c 'print(time.time())' > start.txt``), so "tool start" is
measured from inside the agent's tool process. Usage: ``uv run python benchmarks/bench_control.py [--runs 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    PermissionResultAllow,
    ResultMessage,
)
from tests.model_server.server import ModelServer
from tests.support import services
from tests.support.cluster import cluster
from tests.support.live import live_server
from tests.support.watch import StreamWatcher

from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.config import Settings
from claude_agent_api.kit.logging import configure_logging

SLOW = "python3 -c 'import time; time.sleep(30)'"


def stamp_steps(path: Path) -> list[Any]:
    command = f"python3 -c 'import time; print(time.time())' > {path}"
    return [{"tool_use": {"name": "Bash", "input": {"command": command, "description": "stamp"}}}, "ok"]


def slow_steps() -> list[Any]:
    return [{"tool_use": {"name": "Bash", "input": {"command": SLOW, "description": "slow"}}}, "late"]


async def sdk_samples(model: ModelServer, root: Path, runs: int) -> tuple[list[float], list[float]]:
    interrupts, approvals = [], []
    cwd = root / "sdk"
    cwd.mkdir(parents=True, exist_ok=True)
    answered_at = 0.0

    async def allow(name: str, data: dict[str, Any], ctx: Any) -> PermissionResultAllow:
        nonlocal answered_at
        answered_at = time.time()
        return PermissionResultAllow()

    env = {**model.isolated_env(root / "sdk-cli"), "CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS": "1"}
    options = ClaudeAgentOptions(cwd=str(cwd), setting_sources=[], env=env, can_use_tool=allow)
    async with ClaudeSDKClient(options) as client:
        for i in range(runs):
            await client.query("slow " + model.marker(slow_steps()))
            async for message in client.receive_messages():
                if isinstance(message, AssistantMessage):
                    break
            await asyncio.sleep(0.3)  # the tool is running
            started = time.perf_counter()
            await client.interrupt()
            async for message in client.receive_messages():
                if isinstance(message, ResultMessage):
                    interrupts.append(time.perf_counter() - started)
                    break
            stamp = cwd / f"stamp-{i}.txt"
            await client.query("stamp " + model.marker(stamp_steps(stamp)))
            async for message in client.receive_messages():
                if isinstance(message, ResultMessage):
                    break
            approvals.append(float(stamp.read_text()) - answered_at)
    return interrupts, approvals


async def service_samples(
    run_on: str, control_on: str, key: str, model: ModelServer, workspace: Path, runs: int
) -> tuple[list[float], list[float]]:
    interrupts, approvals = [], []
    async with (
        httpx.AsyncClient(base_url=run_on, headers={"X-API-Key": key}, timeout=120) as a,
        httpx.AsyncClient(base_url=control_on, headers={"X-API-Key": key}, timeout=120) as b,
    ):
        first = await a.post("/api/v1/query/single", json={"prompt": model.marker(["ready"]), "cwd": "bench"})
        sid = first.json()["session_id"]
        directory = workspace / first.json()["init"]["cwd"]
        for i in range(runs):
            body = {"prompt": model.marker(slow_steps()), "permission_mode": "bypassPermissions"}
            watcher = StreamWatcher(a, "POST", f"/api/v1/sessions/{sid}/resume", json=body)
            await watcher.wait_for("message")
            await asyncio.sleep(0.3)  # the tool is running
            started = time.perf_counter()
            await b.post(f"/api/v1/sessions/{sid}/interrupt")
            await watcher.wait_for("done")
            interrupts.append(time.perf_counter() - started)
            await watcher.close()

            stamp = directory / f"stamp-{i}.txt"
            watcher = StreamWatcher(
                a, "POST", f"/api/v1/sessions/{sid}/resume", json={"prompt": model.marker(stamp_steps(stamp))}
            )
            request = await watcher.wait_for("permission_request")
            answered_at = time.time()
            await b.post(f"/api/v1/sessions/{sid}/permissions/{request['request_id']}", json={"decision": "allow"})
            await watcher.wait_for("done")
            await watcher.close()
            approvals.append(float(stamp.read_text()) - answered_at)
    return interrupts, approvals


def row(name: str, interrupts: list[float], approvals: list[float]) -> str:
    def cell(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{statistics.median(ordered) * 1000:9.1f} {ordered[int(0.9 * (len(ordered) - 1))] * 1000:9.1f}"

    return f"{name:<15} {cell(interrupts)}   {cell(approvals)}"


async def main(runs: int) -> None:
    configure_logging("warning")
    with ModelServer() as model, tempfile.TemporaryDirectory(prefix="bc", dir="/tmp") as tmp:
        root = Path(tmp)
        results = [("sdk (baseline)", *await sdk_samples(model, root, runs))]
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=root / "one",
            anthropic_base_url=model.base_url,
            anthropic_api_key="bench",
            agent_max_retries=0,
            rate_limit_enabled=False,
        )
        with live_server(settings) as server:
            async with server.db() as db:
                row_, key = await ApiKeyService(db).create("bench")
                await db.commit()
            workspace = settings.effective_workspace_root / row_.id
            results.append(
                ("one instance", *await service_samples(server.base_url, server.base_url, key, model, workspace, runs))
            )
        if services.postgres_available() and services.redis_available():
            with cluster(root / "two", model.base_url) as two:
                key = await two.new_key("bench")
                async with two.client(two.a, key) as probe:
                    await probe.post("/api/v1/query/single", json={"prompt": model.marker(["hi"])})
                workspace = next((root / "two" / "shared-workspaces").iterdir())
                results.append(("two instances", *await service_samples(two.a, two.b, key, model, workspace, runs)))
    print(f"\n{runs} runs each, ms (scripted model; the answer / interrupt sent to the second instance when two)\n")
    print(f"{'':<15} {'interrupt → done':>19}   {'answer → tool start':>19}")
    print(f"{'path':<15} {'median':>9} {'p90':>9}   {'median':>9} {'p90':>9}")
    for name, interrupts, approvals in results:
        print(row(name, interrupts, approvals))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
