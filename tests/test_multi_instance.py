"""Two instances, one service: what one instance starts, the other continues (sessions, streams, control)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster, cluster
from tests.support.live import parse_sse
from tests.support.processes_cli import cli_processes
from tests.support.watch import StreamWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, model_server: Any) -> Iterator[Cluster]:
    root = Path(tmp_path_factory.mktemp("cluster"))
    with cluster(root, model_server.base_url) as c:
        yield c


def transcripts_on_disk(data_dir: Path) -> list[Path]:
    return list((data_dir / "cli").glob("*/config/projects/*/*.jsonl"))


async def test_a_session_created_on_a_is_resumed_on_b_with_its_history(two: Cluster, model_server: Any) -> None:
    key = await two.new_key()
    async with two.client(two.a, key) as a, two.client(two.b, key) as b:
        first = await a.post(
            "/api/v1/query/single", json={"prompt": "the code word is ZEBRA " + model_server.marker(["Got it."])}
        )
        assert first.status_code == 200, first.text
        sid = first.json()["session_id"]
        assert transcripts_on_disk(two.data_dir("a")) and not transcripts_on_disk(two.data_dir("b"))

        second = await b.post(
            f"/api/v1/sessions/{sid}/resume?stream=false",
            json={"prompt": "what was it? " + model_server.marker(["ZEBRA."])},
        )
        assert second.status_code == 200, second.text
        assert second.json()["text"] == "ZEBRA."
        # B's CLI started from an empty config directory: the history came from the shared store.
        last = [r for r in model_server.requests(session_id=sid) if r["kind"] == "main"][-1]
        assert "the code word is ZEBRA" in json.dumps(last["body"]["messages"])

        # Fork on B leaves A's transcript unchanged.
        before = (await a.get(f"/api/v1/sessions/{sid}/messages?limit=500")).json()["data"]
        forked = await b.post(f"/api/v1/sessions/{sid}/fork", json={"title": "branch"})
        assert forked.status_code == 201
        after = (await a.get(f"/api/v1/sessions/{sid}/messages?limit=500")).json()["data"]
        assert after == before
        fork_messages = (await a.get(f"/api/v1/sessions/{forked.json()['id']}/messages?limit=500")).json()["data"]
        assert "ZEBRA" in json.dumps(fork_messages)
        assert {m["uuid"] for m in fork_messages}.isdisjoint({m["uuid"] for m in before})

        # Totals add up across instances.
        detail = (await b.get(f"/api/v1/sessions/{sid}")).json()
        assert detail["totals"]["num_runs"] == 2


# A tool that runs for 25 s (the CLI refuses `sleep N && …` forms itself).
SLOW_COMMAND = "python3 -c 'import time; time.sleep(25)'"
SLOW = [{"tool_use": {"name": "Bash", "input": {"command": SLOW_COMMAND, "description": "slow"}}}, "late"]


async def test_a_stream_dropped_on_a_is_rejoined_on_b_without_gap_or_duplicate(two: Cluster, model_server: Any) -> None:
    key = await two.new_key()
    steps = [
        {"tool_use": {"name": "Bash", "input": {"command": "echo one", "description": "one"}}},
        {"delay": 1.0, "text": "thinking"},
        {"tool_use": {"name": "Bash", "input": {"command": "echo two", "description": "two"}}},
        "Done on A.",
    ]
    async with two.client(two.a, key) as a, two.client(two.b, key) as b:
        watcher = StreamWatcher(
            a,
            "POST",
            "/api/v1/query",
            json={"prompt": model_server.marker(steps), "permission_mode": "bypassPermissions"},
        )
        await watcher.wait_for("message")
        await watcher.close()  # dropped after N events
        seen = watcher.frames
        last = int(seen[-1]["id"])
        sid = seen[0]["data"]["session_id"]
        rest = parse_sse((await b.get(f"/api/v1/sessions/{sid}/stream", headers={"Last-Event-ID": str(last)})).text)
        everything = parse_sse((await b.get(f"/api/v1/sessions/{sid}/stream")).text)
    assert [int(f["id"]) for f in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["status"] == "completed"
    assert [f["data"] for f in seen + rest] == [f["data"] for f in everything]


async def test_an_interrupt_sent_to_b_stops_a_run_on_a(two: Cluster, model_server: Any) -> None:
    key = await two.new_key()
    async with two.client(two.a, key) as a, two.client(two.b, key) as b:
        watcher = StreamWatcher(
            a,
            "POST",
            "/api/v1/query",
            json={"prompt": model_server.marker(SLOW), "permission_mode": "bypassPermissions"},
        )
        await watcher.wait_for("message")
        sid = watcher.frames[0]["data"]["session_id"]
        for _ in range(50):  # the tool's process is running on A
            if cli_processes(two.data_dir("a"), "time.sleep(25)"):
                break
            await asyncio.sleep(0.1)
        assert cli_processes(two.data_dir("a"), "time.sleep(25)")
        response = await b.post(f"/api/v1/sessions/{sid}/interrupt")
        assert response.status_code == 200 and response.json()["stopped"] is True
        await watcher.finish(timeout=10)
        detail = (await b.get(f"/api/v1/sessions/{sid}")).json()
    assert watcher.of("done")[0]["status"] == "interrupted"
    assert detail["last_run"]["status"] == "interrupted"
    assert cli_processes(two.data_dir("a"), "time.sleep(25)") == []


@pytest.mark.parametrize("decision", ["allow", "deny"])
async def test_an_approval_answered_on_b_decides_a_tool_on_a(two: Cluster, model_server: Any, decision: str) -> None:
    key = await two.new_key()
    async with two.client(two.a, key) as a, two.client(two.b, key) as b:
        first = await a.post(
            "/api/v1/query/single", json={"prompt": model_server.marker(["ready"]), "cwd": f"ap-{decision}"}
        )
        sid = first.json()["session_id"]
        workspace = next((two.root / "shared-workspaces").iterdir())
        target = workspace / f"ap-{decision}" / "file.txt"
        steps = [{"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "from A"}}}, "ok"]
        watcher = StreamWatcher(
            a, "POST", f"/api/v1/sessions/{sid}/resume", json={"prompt": model_server.marker(steps)}
        )
        request = await watcher.wait_for("permission_request")
        answered = await b.post(
            f"/api/v1/sessions/{sid}/permissions/{request['request_id']}", json={"decision": decision}
        )
        assert answered.status_code == 200
        await watcher.finish()
    assert target.exists() is (decision == "allow")
