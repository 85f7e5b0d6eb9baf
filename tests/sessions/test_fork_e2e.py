"""Forks end to end: a new session with its own id and parent link, branched at a message; the original untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_fork_at_a_message_branches_the_conversation(live: LiveServer, live_key: str, model_server: Any) -> None:
    async with live.client(live_key) as client:
        first = await client.post(
            "/api/v1/query/single", json={"prompt": "remember APPLES " + model_server.marker(["Noted apples."])}
        )
        sid = first.json()["session_id"]
        await client.post(
            f"/api/v1/sessions/{sid}/resume?stream=false",
            json={"prompt": "and PEARS " + model_server.marker(["Noted pears."])},
        )
        before = (await client.get(f"/api/v1/sessions/{sid}/messages?limit=500")).json()["data"]
        apples_reply = next(m for m in before if m["type"] == "assistant" and "apples" in json.dumps(m["content"]))

        forked = await client.post(
            f"/api/v1/sessions/{sid}/fork?stream=false",
            json={
                "message_id": apples_reply["uuid"],
                "prompt": "what do you remember? " + model_server.marker(["Only apples."]),
            },
        )
        assert forked.status_code == 200, forked.text
        fork_id = forked.json()["session_id"]
        assert fork_id != sid and forked.json()["text"] == "Only apples."
        fork_row = (await client.get(f"/api/v1/sessions/{fork_id}")).json()
        assert fork_row["parent_session_id"] == sid

        after = (await client.get(f"/api/v1/sessions/{sid}/messages?limit=500")).json()["data"]
        plain = await client.post(f"/api/v1/sessions/{sid}/fork", json={"title": "copy"})
        bad = await client.post(
            f"/api/v1/sessions/{sid}/fork", json={"message_id": "0b8a8f5e-8d63-4c7e-9d0a-3c3c3c3c3c3c"}
        )
    # The fork's model request had the history up to the apples reply, not the pears turn.
    request = [r for r in model_server.requests(session_id=fork_id) if r["kind"] == "main"][-1]
    history = json.dumps(request["body"]["messages"])
    assert "APPLES" in history and "PEARS" not in history
    assert after == before  # the original transcript is untouched
    assert plain.status_code == 201
    assert plain.json()["parent_session_id"] == sid and plain.json()["title"] == "copy"
    assert plain.json()["id"] not in (sid, fork_id)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["errors"][0]["field"] == "message_id"
