"""``WS /api/v1/query/ws``: a whole run with an approval and a question answered in-band; refusals with their
documented close codes; a slow reader that falls behind loses nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures import SettingsFactory, create_live_key
from tests.runs.test_query_e2e import key_workspace
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def ws_url(live: LiveServer) -> str:
    return live.base_url.replace("http://", "ws://") + "/api/v1/query/ws"


async def receive(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the connection; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 15)
    except ConnectionClosed:
        return ws.close_code


async def test_a_query_with_an_approval_and_a_question_answered_in_band(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    target = await key_workspace(live, live_key) / "ws" / "chosen.txt"
    question = {
        "question": "Which name?",
        "header": "Name",
        "options": [{"label": "alpha", "description": "a"}, {"label": "beta", "description": "b"}],
        "multiSelect": False,
    }
    steps = [
        {"tool_use": {"name": "AskUserQuestion", "input": {"questions": [question]}}},
        {"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "beta"}}},
        "Wrote beta.",
    ]
    events: list[dict[str, Any]] = []
    async with connect(ws_url(live), additional_headers={"X-API-Key": live_key}) as ws:
        await ws.send(json.dumps({"type": "query", "ref": "q1", "prompt": model_server.marker(steps), "cwd": "ws"}))
        ack = await receive(ws)
        assert ack["type"] == "ack" and ack["ref"] == "q1" and ack["run_id"]
        while True:
            message = await receive(ws)
            if message["type"] == "ack":
                continue
            assert message["type"] == "event", message
            events.append(message)
            data = message["data"]
            if message["event"] == "question":
                answers = {"Which name?": "beta"}
                await ws.send(
                    json.dumps(
                        {
                            "type": "answer",
                            "session_id": ack["session_id"],
                            "question_id": data["question_id"],
                            "answers": answers,
                        }
                    )
                )
            elif message["event"] == "permission_request":
                await ws.send(
                    json.dumps(
                        {
                            "type": "permission_response",
                            "session_id": ack["session_id"],
                            "request_id": data["request_id"],
                            "decision": "allow",
                        }
                    )
                )
            elif message["event"] == "done":
                break
    names = [e["event"] for e in events]
    assert names[0] == "init" and names[-1] == "done"
    assert "question" in names and "permission_request" in names
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["status"] == "completed"
    assert target.read_text() == "beta"


async def test_a_bad_key_is_refused_with_4401(live: LiveServer) -> None:
    async with connect(ws_url(live), additional_headers={"X-API-Key": "caa_" + "n" * 43}) as ws:
        assert await close_code(ws) == 4401


async def test_a_browser_authenticates_with_a_first_message(live: LiveServer, live_key: str) -> None:
    async with connect(ws_url(live)) as ws:
        await ws.send(json.dumps({"type": "auth", "api_key": live_key}))
        await ws.send(json.dumps({"type": "ping", "ref": 7}))
        assert await receive(ws) == {"type": "pong", "ref": 7}


async def test_no_authentication_in_time_is_refused_with_4408(e2e_settings: SettingsFactory) -> None:
    with live_server(e2e_settings(ws_auth_timeout_seconds=0.5)) as server:
        async with connect(ws_url(server)) as ws:
            assert await close_code(ws) == 4408


async def test_a_bad_origin_is_refused_with_4403(e2e_settings: SettingsFactory) -> None:
    with live_server(e2e_settings(cors_origins=["https://app.example"])) as server:
        key = await create_live_key(server)
        headers = {"X-API-Key": key}
        async with connect(ws_url(server), additional_headers=headers, origin="https://evil.example") as ws:  # type: ignore[arg-type]
            assert await close_code(ws) == 4403
        async with connect(ws_url(server), additional_headers=headers, origin="https://app.example") as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "ping"}))
            assert (await receive(ws))["type"] == "pong"


async def test_a_session_of_another_key_is_refused_with_4404(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    async with live.client(live_key) as client:
        sid = (await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["mine"])})).json()[
            "session_id"
        ]
    other = await create_live_key(live, "other")
    for message in (
        {"type": "subscribe", "session_id": sid},
        {"type": "interrupt", "session_id": sid},
        {"type": "resume", "session_id": sid, "prompt": "hi"},
    ):
        async with connect(ws_url(live), additional_headers={"X-API-Key": other}) as ws:
            await ws.send(json.dumps(message))
            assert await close_code(ws) == 4404


async def test_invalid_messages_get_an_error_and_the_connection_stays(live: LiveServer, live_key: str) -> None:
    async with connect(ws_url(live), additional_headers={"X-API-Key": live_key}) as ws:
        await ws.send(json.dumps({"type": "query", "ref": "bad", "prompt": "x", "max_turns": 0}))
        error = await receive(ws)
        assert error["type"] == "error" and error["ref"] == "bad" and error["code"] == "VALIDATION_ERROR"
        assert error["details"]["errors"][0]["field"] == "max_turns"
        await ws.send(json.dumps({"type": "nonsense"}))
        assert (await receive(ws))["code"] == "VALIDATION_ERROR"
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws))["type"] == "pong"


async def test_a_slow_reader_falls_behind_and_loses_nothing(live: LiveServer, live_key: str, model_server: Any) -> None:
    bash = {"tool_use": {"name": "Bash", "input": {"command": "true", "description": "noop"}}}
    steps = [bash] * 40 + ["All done."]
    async with connect(ws_url(live), additional_headers={"X-API-Key": live_key}, max_queue=4) as ws:
        await ws.send(
            json.dumps({"type": "query", "prompt": model_server.marker(steps), "include_partial_messages": True})
        )
        ack = await receive(ws)
        # Read nothing while the run produces hundreds of events: they wait in the run's log, not in memory.
        async with live.client(live_key) as client:
            for _ in range(100):
                detail = (await client.get(f"/api/v1/sessions/{ack['session_id']}")).json()
                if detail["last_run"] and detail["last_run"]["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
        events = []
        while not events or events[-1]["event"] != "done":
            events.append(await receive(ws))
    assert len(events) > 200
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["status"] == "completed"
