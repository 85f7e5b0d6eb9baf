"""What the service adds to an agent turn: ``POST /query`` (SSE) and ``/query/single`` vs the SDK alone.

Runs the same scripted prompt (one Bash tool call, then a text answer) N times three ways, against the scripted
model on 127.0.0.1, and prints the median and p90 of the time to the first event, to the result, and to the end:

- ``sdk``: ``claude_agent_sdk.query()`` called directly in this process (the baseline): first message,
  ``ResultMessage``, and the end of the iteration (the CLI has exited);
- ``query (SSE)``: through the service over real HTTP (uvicorn): the ``init`` frame, the ``result`` frame, and
  ``done`` (the run is recorded in SQL and the CLI has exited);
- ``query/single``: the whole JSON response, which comes at the end of the run.

Usage: ``uv run python benchmarks/bench_query.py [--runs 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from claude_agent_sdk import ClaudeAgentOptions, ResultMessage, query

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.model_server.server import ModelServer
from tests.support.live import live_server

from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.config import Settings
from claude_agent_api.kit.logging import configure_logging

STEPS = [{"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}}, "Done."]


Sample = tuple[float, float, float]  # seconds to first event, to result, to end


async def sdk_once(model: ModelServer, root: Path, i: int) -> Sample:
    cwd = root / f"sdk-{i}"
    cwd.mkdir(parents=True)
    options = ClaudeAgentOptions(
        cwd=str(cwd), setting_sources=[], permission_mode="bypassPermissions", env=model.isolated_env(root / "sdk-cli")
    )
    start = time.perf_counter()
    first = result = 0.0
    async for message in query(prompt="go " + model.marker(STEPS), options=options):
        first = first or time.perf_counter() - start
        if isinstance(message, ResultMessage):
            result = time.perf_counter() - start
    return first, result, time.perf_counter() - start


async def sse_once(client: httpx.AsyncClient, model: ModelServer) -> Sample:
    start = time.perf_counter()
    first = result = end = 0.0
    async with client.stream(
        "POST", "/api/v1/query", json={"prompt": "go " + model.marker(STEPS), "permission_mode": "bypassPermissions"}
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                first = first or time.perf_counter() - start
                if line.strip() == "event: result":
                    result = time.perf_counter() - start
                if line.strip() == "event: done":
                    end = time.perf_counter() - start
    return first, result, end


async def single_once(client: httpx.AsyncClient, model: ModelServer) -> Sample:
    start = time.perf_counter()
    response = await client.post(
        "/api/v1/query/single", json={"prompt": "go " + model.marker(STEPS), "permission_mode": "bypassPermissions"}
    )
    response.raise_for_status()
    elapsed = time.perf_counter() - start
    return elapsed, elapsed, elapsed


def _median_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def row(name: str, samples: list[Sample], base: list[Sample] | None) -> str:
    cells = []
    for column in range(3):
        median, p90 = _median_p90([s[column] for s in samples])
        cells.append(f"{median:8.1f} {p90:8.1f}")
    added = ""
    if base is not None:
        deltas = [_median_p90([s[c] for s in samples])[0] - _median_p90([b[c] for b in base])[0] for c in (1, 2)]
        added = f"{deltas[0]:+8.1f} {deltas[1]:+8.1f}"
    return f"{name:<15} {'  '.join(cells)}  {added}"


async def main(runs: int) -> None:
    configure_logging("warning")
    with ModelServer() as model, tempfile.TemporaryDirectory(prefix="bench", dir="/tmp") as tmp:
        root = Path(tmp)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=root / "data",
            anthropic_base_url=model.base_url,
            anthropic_api_key="bench-key",
            agent_max_retries=0,
            rate_limit_enabled=False,
            log_level="warning",
        )
        with live_server(settings) as server:
            async with server.db() as db:
                _, key = await ApiKeyService(db).create("bench")
                await db.commit()
            async with server.client(key, timeout=120) as client:
                await sse_once(client, model)  # warm-up: first-use costs (imports, directories)
                await sdk_once(model, root, -1)
                sdk, sse, single = [], [], []
                for i in range(runs):  # interleaved, so drift hits all three alike
                    sdk.append(await sdk_once(model, root, i))
                    sse.append(await sse_once(client, model))
                    single.append(await single_once(client, model))
        print(f"\n{runs} runs each; times in ms (one Bash tool call + a text answer, scripted model)\n")
        print(
            f"{'path':<15} {'first':>8} {'p90':>8}  {'result':>8} {'p90':>8}  {'end':>8} {'p90':>8}  "
            f"{'+result':>8} {'+end':>8}"
        )
        print(row("sdk (baseline)", sdk, None))
        print(row("query (SSE)", sse, sdk))
        print(row("query/single", single, sdk))
        print("\n+result, +end: the service's median minus the SDK's median (what the service adds).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
