"""Sessions that last: follow-up turns on a warm agent vs a new process, and listing many sessions.

1. Follow-up turns: one session, N follow-up prompts through ``POST /sessions/{id}/resume?stream=false``, once
   with warm agents (the default) and once with them turned off (``warm_pool_size=0``: every turn starts a CLI
   process and resumes the transcript). Prints the median and p90 per turn.
2. Listing: 10,000 sessions of one key (plus 1,000 of another) inserted directly, then ``GET /sessions``
   (first page of 50, a filtered page, a deep page through the cursor) on SQLite and, when reachable,
   PostgreSQL. Prints the median latency over repeated requests.

Usage: ``uv run python benchmarks/bench_sessions.py [--turns 15] [--sessions 10000]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from tests.model_server.server import ModelServer
from tests.support import services
from tests.support.live import LiveServer, live_server

from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.config import Settings
from claude_agent_api.kit.logging import configure_logging
from claude_agent_api.models import AgentSession, SessionTag


def med_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


async def new_key(server: LiveServer, name: str) -> tuple[str, str]:
    async with server.db() as db:
        row, secret = await ApiKeyService(db).create(name)
        await db.commit()
    return row.id, secret


async def follow_up_turns(model: ModelServer, root: Path, turns: int, *, warm: bool) -> list[float]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=root / ("warm" if warm else "cold"),
        anthropic_base_url=model.base_url,
        anthropic_api_key="bench",
        agent_max_retries=0,
        rate_limit_enabled=False,
        warm_pool_size=16 if warm else 0,
    )
    with live_server(settings) as server:
        _, key = await new_key(server, "bench")
        async with server.client(key, timeout=120) as client:
            first = await client.post("/api/v1/query/single", json={"prompt": "start " + model.marker(["ok"])})
            sid = first.json()["session_id"]
            times = []
            for i in range(turns):
                start = time.perf_counter()
                response = await client.post(
                    f"/api/v1/sessions/{sid}/resume?stream=false", json={"prompt": f"turn {i} " + model.marker(["ok"])}
                )
                response.raise_for_status()
                times.append(time.perf_counter() - start)
    return times


async def seed_sessions(server: LiveServer, owner: str, other: str, count: int) -> None:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    for i in range(count + count // 10):
        sid = str(uuid.uuid4())
        mine = i < count
        tag_list = ["even"] if i % 2 == 0 else ["odd"]
        rows.append(
            {
                "id": sid,
                "owner_key_id": owner if mine else other,
                "status": "idle" if i % 7 else "failed",
                "model": "claude-a" if i % 3 else "claude-b",
                "cwd": f"sessions/{sid}",
                "options": {},
                "tags": tag_list,
                "metadata": {},
                "last_activity_at": now - timedelta(seconds=i),
                "created_at": now - timedelta(seconds=i),
                "updated_at": now,
            }
        )
        tags.extend({"session_id": sid, "tag": t} for t in tag_list)
    async with server.db() as db:
        for start in range(0, len(rows), 2000):
            await db.execute(insert(AgentSession), rows[start : start + 2000])
        for start in range(0, len(tags), 2000):
            await db.execute(insert(SessionTag), tags[start : start + 2000])
        await db.commit()


async def listing(model: ModelServer, root: Path, count: int, database_url: str | None, name: str) -> list[str]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=root / f"list-{name}",
        database_url=database_url,
        anthropic_base_url=model.base_url,
        rate_limit_enabled=False,
    )
    out = []
    with live_server(settings) as server:
        owner, key = await new_key(server, "lister")
        other, _ = await new_key(server, "other")
        await seed_sessions(server, owner, other, count)
        async with server.client(key, timeout=60) as client:
            cases = {
                "first page (50)": "/api/v1/sessions?limit=50",
                "filtered (status+tag)": "/api/v1/sessions?limit=50&status=idle&tag=even",
            }
            first = (await client.get("/api/v1/sessions?limit=200")).json()
            cursor = first.get("next_cursor")
            for _ in range(20):
                if not cursor:
                    break
                page = (await client.get(f"/api/v1/sessions?limit=200&cursor={cursor}")).json()
                cursor = page.get("next_cursor")
            if cursor:
                cases["deep page (after 4,200)"] = f"/api/v1/sessions?limit=50&cursor={cursor}"
            for label, url in cases.items():
                samples = []
                for _ in range(30):
                    start = time.perf_counter()
                    response = await client.get(url)
                    samples.append(time.perf_counter() - start)
                    response.raise_for_status()
                med, p90 = med_p90(samples)
                out.append(f"{name:<11} {label:<24} {med:8.1f} {p90:8.1f}   total={response.json()['total']}")
    return out


async def main(turns: int, count: int) -> None:
    configure_logging("warning")
    with ModelServer() as model, tempfile.TemporaryDirectory(prefix="bs", dir="/tmp") as tmp:
        root = Path(tmp)
        warm = await follow_up_turns(model, root, turns, warm=True)
        cold = await follow_up_turns(model, root, turns, warm=False)
        print(f"\nFollow-up turns ({turns} each, one text reply, scripted model), ms per turn:\n")
        print(f"{'agent':<6} {'median':>8} {'p90':>8}")
        for label, samples in (("warm", warm), ("cold", cold)):
            med, p90 = med_p90(samples)
            print(f"{label:<6} {med:8.1f} {p90:8.1f}")
        print(f"\nwarm / cold at the median: {statistics.median(warm) / statistics.median(cold):.2f}")

        print(f"\nGET /sessions with {count:,} sessions of the caller (+{count // 10:,} of another key), ms:\n")
        print(f"{'engine':<11} {'request':<24} {'median':>8} {'p90':>8}")
        lines = await listing(model, root, count, None, "sqlite")
        if services.postgres_available():
            url = await services.acreate_postgres_database("caa_bench")
            try:
                from claude_agent_api.kit.migrations import upgrade_async

                await upgrade_async(url)
                lines += await listing(model, root, count, url, "postgresql")
            finally:
                await services.adrop_postgres_database(url)
        print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.sessions))
