"""Two instances, one service: what one instance starts, the other continues (sessions, streams, control)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Cluster, cluster

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
