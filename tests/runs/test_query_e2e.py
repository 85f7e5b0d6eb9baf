"""``POST /query`` and ``/query/single`` end to end: real server, real SDK, real CLI, scripted model.

Each test asserts what a user observes: the streamed events, the files the agent wrote, the rows.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from claude_agent_api.models import AgentSession, ApiKey, Run
from tests.fixtures import SettingsFactory, create_live_key
from tests.support.live import LiveServer, live_server, parse_sse
from tests.support.processes_cli import cli_processes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def stream(live: LiveServer, key: str, body: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    async with live.client(key) as client:
        response = await client.post("/api/v1/query", json=body)
        return response, parse_sse(response.text) if response.status_code == 200 else []


def events_of(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f["data"] for f in frames if f["event"] == kind]


async def key_workspace(live: LiveServer, key: str) -> Path:
    import hashlib

    async with live.db() as db:
        row = (
            await db.execute(select(ApiKey).where(ApiKey.digest == hashlib.sha256(key.encode()).hexdigest()))
        ).scalar_one()
    return live.settings.effective_workspace_root / row.id


async def test_write_then_bash_creates_files_in_the_session_workspace(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    workspace = await key_workspace(live, live_key)
    project = workspace / "proj"
    steps = [
        {"tool_use": {"name": "Write", "input": {"file_path": str(project / "notes.txt"), "content": "hello\n"}}},
        {
            "tool_use": {
                "name": "Bash",
                "input": {"command": "cat notes.txt notes.txt > twice.txt", "description": "copy"},
            }
        },
        "Both files are there.",
    ]
    response, frames = await stream(
        live,
        live_key,
        {"prompt": "write " + model_server.marker(steps), "cwd": "proj", "permission_mode": "bypassPermissions"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    kinds = [f["event"] for f in frames]
    assert kinds[0] == "init" and kinds[-1] == "done"
    assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    assert (project / "notes.txt").read_text() == "hello\n"
    assert (project / "twice.txt").read_text() == "hello\nhello\n"
    tool_uses = [b["name"] for m in events_of(frames, "message") for b in m["content"] if b["type"] == "tool_use"]
    assert tool_uses == ["Write", "Bash"]
    init = events_of(frames, "init")[0]
    assert init["cwd"] == "proj" and init["session_id"] == response.headers["X-Session-ID"]
    result = events_of(frames, "result")[-1]
    assert result["stop_reason"] == "end_turn" and result["result"] == "Both files are there."
    assert events_of(frames, "done")[0]["status"] == "completed"

    # Usage and cost are non-zero and summed into the session and run rows.
    assert result["total_cost_usd"] > 0 and result["usage"]["input_tokens"] > 0
    async with live.db() as db:
        session = await db.get(AgentSession, response.headers["X-Session-ID"])
        run = await db.get(Run, response.headers["X-Run-ID"])
    assert session is not None and run is not None
    assert session.status == "idle" and session.cwd == "proj" and session.num_runs == 1
    assert session.total_cost_usd == pytest.approx(result["total_cost_usd"])
    assert session.input_tokens == result["usage"]["input_tokens"] > 0
    assert session.num_turns == result["num_turns"] == 3
    assert run.status == "completed" and run.last_event_seq == len(frames)
    assert run.result is not None and run.result["result"] == "Both files are there."


async def test_a_second_prompt_continues_the_session_and_totals_add_up(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    first, frames = await stream(live, live_key, {"prompt": "remember 42 " + model_server.marker(["Noted."])})
    sid = first.headers["X-Session-ID"]
    cost_1 = events_of(frames, "result")[-1]["total_cost_usd"]
    second, frames2 = await stream(
        live, live_key, {"prompt": "what number? " + model_server.marker(["42."]), "session_id": sid}
    )
    assert second.headers["X-Session-ID"] == sid and events_of(frames2, "result")[-1]["result"] == "42."
    # The model saw the first exchange in the second request.
    bodies = [r["body"] for r in model_server.requests(session_id=sid) if r["kind"] == "main"]
    assert "remember 42" in json.dumps(bodies[-1]["messages"])
    async with live.db() as db:
        session = await db.get(AgentSession, sid)
    assert session is not None and session.num_runs == 2
    assert session.total_cost_usd == pytest.approx(cost_1 + events_of(frames2, "result")[-1]["total_cost_usd"])


async def test_read_only_tools_make_a_write_fail_visibly(live: LiveServer, live_key: str, model_server: Any) -> None:
    workspace = await key_workspace(live, live_key)
    target = workspace / "ro" / "x.txt"
    steps = [{"tool_use": {"name": "Write", "input": {"file_path": str(target), "content": "no"}}}, "Could not write."]
    _, frames = await stream(
        live,
        live_key,
        {"prompt": model_server.marker(steps), "cwd": "ro", "tools": ["Read"], "permission_mode": "bypassPermissions"},
    )
    assert events_of(frames, "init")[0]["tools"] == ["Read"]
    results = [b for m in events_of(frames, "message") for b in m["content"] if b["type"] == "tool_result"]
    assert results and results[0]["is_error"] is True
    assert "Write" in str(results[0]["content"])
    assert not target.exists()


async def test_max_turns_ends_with_its_stop_reason(live: LiveServer, live_key: str, model_server: Any) -> None:
    steps = [
        {"tool_use": {"name": "Bash", "input": {"command": "true"}}},
        {"tool_use": {"name": "Bash", "input": {"command": "true"}}},
        "never",
    ]
    response, frames = await stream(
        live, live_key, {"prompt": model_server.marker(steps), "max_turns": 1, "permission_mode": "bypassPermissions"}
    )
    result = events_of(frames, "result")[-1]
    assert result["stop_reason"] == "max_turns_reached" and result["subtype"] == "error_max_turns"
    assert events_of(frames, "done")[0]["status"] == "max_turns"
    async with live.db() as db:
        run = await db.get(Run, response.headers["X-Run-ID"])
    assert run is not None and run.status == "max_turns" and run.stop_reason == "max_turns_reached"


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


async def test_json_schema_output_is_returned_and_validates(live: LiveServer, live_key: str, model_server: Any) -> None:
    answer = {"city": "Lyon", "population": 522000}
    steps = [{"tool_use": {"name": "StructuredOutput", "input": answer}}, "Here it is."]
    async with live.client(live_key) as client:
        response = await client.post(
            "/api/v1/query/single",
            json={"prompt": model_server.marker(steps), "output_format": {"type": "json_schema", "schema": SCHEMA}},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    jsonschema.validate(body["structured_output"], SCHEMA)
    assert body["structured_output"] == answer


async def test_structured_output_the_model_never_produced_is_an_error(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    async with live.client(live_key) as client:
        response = await client.post(
            "/api/v1/query/single",
            json={
                "prompt": model_server.marker(["Just prose."]),
                "output_format": {"type": "json_schema", "schema": SCHEMA},
            },
        )
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "STRUCTURED_OUTPUT_MISSING"
    assert body["result"]["is_error"] is True and body["result"]["stop_reason"] == "structured_output_missing"


async def test_invalid_schema_is_422_before_any_process_starts(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    token = model_server.add_script(["unused"])
    async with live.client(live_key) as client:
        response = await client.post(
            "/api/v1/query",
            json={"prompt": token, "output_format": {"type": "json_schema", "schema": {"type": "nope"}}},
        )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["field"].startswith("output_format")
    assert model_server.requests(token=token) == []
    assert cli_processes(live.settings.data_dir) == []
    async with live.db() as db:
        assert (await db.execute(select(Run))).scalars().all() == []


async def test_todowrite_produces_todo_events(live: LiveServer, live_key: str, model_server: Any) -> None:
    todos = [
        {"content": "Read the code", "status": "completed", "activeForm": "Reading the code"},
        {"content": "Fix the bug", "status": "in_progress", "activeForm": "Fixing the bug"},
    ]
    steps = [{"tool_use": {"name": "TodoWrite", "input": {"todos": todos}}}, "Planned."]
    _, frames = await stream(
        live, live_key, {"prompt": model_server.marker(steps), "permission_mode": "bypassPermissions"}
    )
    todo_events = events_of(frames, "todo")
    assert len(todo_events) == 1
    assert todo_events[0]["todos"] == todos
    tool_results = [b for m in events_of(frames, "message") for b in m["content"] if b["type"] == "tool_result"]
    assert tool_results[0]["is_error"] in (None, False)


async def test_project_commands_and_skills_appear_in_init(live: LiveServer, live_key: str, model_server: Any) -> None:
    project = await key_workspace(live, live_key) / "withsettings"
    (project / ".claude" / "commands").mkdir(parents=True)
    (project / ".claude" / "commands" / "greet.md").write_text(
        "---\ndescription: Say hello\n---\nSay hello to $ARGUMENTS\n"
    )
    (project / ".claude" / "skills" / "tidy").mkdir(parents=True)
    (project / ".claude" / "skills" / "tidy" / "SKILL.md").write_text(
        "---\nname: tidy\ndescription: Tidy up files\n---\nKeep things tidy.\n"
    )
    _, frames = await stream(
        live, live_key, {"prompt": model_server.marker(["ok"]), "cwd": "withsettings", "setting_sources": ["project"]}
    )
    init = events_of(frames, "init")[0]
    assert "greet" in init["slash_commands"]
    assert "tidy" in init["skills"]
    # Without project settings, none of it is loaded.
    _, frames = await stream(live, live_key, {"prompt": model_server.marker(["ok"]), "cwd": "withsettings"})
    assert "greet" not in events_of(frames, "init")[0]["slash_commands"]


async def test_a_stdio_mcp_server_tool_is_called(
    live: LiveServer, live_key: str, model_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo_log = tmp_path / "echo.log"
    server = {
        "type": "stdio",
        "command": sys.executable,
        "args": [str(Path(__file__).parents[1] / "support" / "mcp_echo.py")],
        "env": {"ECHO_LOG": str(echo_log)},
    }
    steps = [{"tool_use": {"name": "mcp__echo__echo", "input": {"text": "ping"}}}, "Echoed."]
    _, frames = await stream(
        live,
        live_key,
        {
            "prompt": model_server.marker(steps),
            "mcp_servers": {"echo": server},
            "allowed_tools": ["mcp__echo__echo"],
            "permission_mode": "bypassPermissions",
        },
    )
    init = events_of(frames, "init")[0]
    assert {"name": "echo", "status": "connected"} in [
        {"name": s["name"], "status": s["status"]} for s in init["mcp_servers"]
    ]
    results = [b for m in events_of(frames, "message") for b in m["content"] if b["type"] == "tool_result"]
    assert "echo: ping" in json.dumps(results)
    assert echo_log.read_text() == "ping\n"


@pytest.mark.parametrize("status", [401, 500])
async def test_model_endpoint_errors_become_an_error_event_and_result_quickly(
    live: LiveServer, live_key: str, model_server: Any, status: int
) -> None:
    steps = [{"error": {"status": status, "message": "upstream says no"}}]
    started = time.monotonic()
    _, frames = await stream(live, live_key, {"prompt": model_server.marker(steps)})
    elapsed = time.monotonic() - started
    result = events_of(frames, "result")[-1]
    assert result["is_error"] is True and result["api_error_status"] == status
    error = events_of(frames, "error")[0]
    assert error["code"] == "MODEL_API_ERROR" and str(status) in error["message"]
    assert [f["event"] for f in frames][-2:] == ["error", "done"]
    assert events_of(frames, "done")[0]["status"] == "failed"
    assert elapsed < 30  # not the minutes that retries would take
    async with live.client(live_key) as client:
        single = await client.post("/api/v1/query/single", json={"prompt": model_server.marker(steps)})
    assert single.status_code == 502
    assert single.json()["error"]["code"] == "MODEL_API_ERROR"


async def test_a_cli_that_fails_to_start_says_why(
    e2e_settings: SettingsFactory, model_server: Any, tmp_path: Path
) -> None:
    fake = tmp_path / "broken-cli"
    fake.write_text("#!/bin/sh\necho 'fatal: cannot open the sandbox profile' >&2\nexit 3\n")
    fake.chmod(0o755)
    with live_server(e2e_settings(agent_cli_path=fake)) as server:
        key = await create_live_key(server)
        _, frames = await stream(server, key, {"prompt": "hi"})
        error = events_of(frames, "error")[0]
        assert error["code"] in ("AGENT_START_FAILED", "AGENT_PROCESS_FAILED")
        assert "cannot open the sandbox profile" in error["message"]
        assert events_of(frames, "done")[0]["status"] == "failed"
        async with server.client(key) as client:
            single = await client.post("/api/v1/query/single", json={"prompt": "hi"})
        assert single.status_code == 502
        assert "cannot open the sandbox profile" in single.json()["error"]["message"]


async def test_options_reach_the_model_and_the_agent_environment_is_clean(
    e2e_settings: SettingsFactory, model_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets of the server process itself must never reach the agent's tools.
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:server-secret@db/prod")
    monkeypatch.setenv("CAA_BOOTSTRAP_ADMIN_KEY", "caa_server_secret_bootstrap_key_value")
    monkeypatch.setenv("TEAM_LABEL", "blue")
    with live_server(e2e_settings(agent_env_allowlist=["TEAM_LABEL", "GREETING"])) as server:
        key = await create_live_key(server)
        workspace = await key_workspace(server, key)
        steps = [
            {"tool_use": {"name": "Bash", "input": {"command": "env > env.txt", "description": "dump env"}}},
            "ok",
        ]
        image = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        token = model_server.add_script(steps)
        _, frames = await stream(
            server,
            key,
            {
                "prompt": [
                    {"type": "text", "text": f"look ({token})"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
                ],
                "cwd": "envcheck",
                "model": "claude-test-model",
                "system_prompt": "You are the SYSTEM-MARKER assistant.",
                "env": {"GREETING": "hello-from-request"},
                "permission_mode": "bypassPermissions",
            },
        )
    assert events_of(frames, "done")[0]["status"] == "completed"
    request = next(r for r in model_server.requests(token=token) if r["kind"] == "main")
    assert request["body"]["model"] == "claude-test-model"
    assert "SYSTEM-MARKER" in json.dumps(request["body"]["system"])
    first_user = request["body"]["messages"][0]["content"]
    assert any(block.get("type") == "image" for block in first_user)
    env = dict(
        line.split("=", 1) for line in (workspace / "envcheck" / "env.txt").read_text().splitlines() if "=" in line
    )
    assert env["GREETING"] == "hello-from-request"
    assert "server-secret" not in json.dumps(env)
    assert "caa_server_secret_bootstrap_key_value" not in json.dumps(env)
    assert env.get("DATABASE_URL", "") == ""
    assert env.get("TEAM_LABEL", "") == ""  # allow-listed for requests, not inherited from the server


async def test_live_mcp_status_of_a_warm_agent(
    live: LiveServer, live_key: str, model_server: Any, tmp_path: Path
) -> None:
    from tests.fixtures import create_live_key

    server = {
        "type": "stdio",
        "command": sys.executable,
        "args": [str(Path(__file__).parents[1] / "support" / "mcp_echo.py")],
        "env": {"ECHO_LOG": str(tmp_path / "echo.log")},
    }
    async with live.client(live_key) as client:
        done = await client.post(
            "/api/v1/query/single", json={"prompt": model_server.marker(["ok"]), "mcp_servers": {"echo": server}}
        )
        sid = done.json()["session_id"]
        status = await client.get(f"/api/v1/sessions/{sid}/mcp")
        remote = await client.post(
            "/api/v1/query",
            json={"prompt": "x", "mcp_servers": {"r": {"type": "http", "url": "http://127.0.0.1:9/mcp"}}},
        )
        await client.delete(f"/api/v1/sessions/{sid}")
    other = await create_live_key(live, "other")
    async with live.client(other) as intruder:
        stolen = await intruder.get(f"/api/v1/sessions/{sid}/mcp")
    assert status.status_code == 200, status.text
    assert [(s["name"], s["status"]) for s in status.json()["mcp_servers"]] == [("echo", "connected")]
    assert remote.status_code == 422
    assert remote.json()["error"]["details"]["errors"][0]["field"] == "mcp_servers.r.url"
    assert stolen.status_code == 404


async def test_no_live_agent_no_mcp_status(e2e_settings: SettingsFactory, model_server: Any) -> None:
    with live_server(e2e_settings(warm_pool_size=0)) as server:
        key = await create_live_key(server)
        async with server.client(key) as client:
            sid = (await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["ok"])})).json()[
                "session_id"
            ]
            response = await client.get(f"/api/v1/sessions/{sid}/mcp")
    assert response.status_code == 409 and response.json()["error"]["code"] == "NO_LIVE_AGENT"


async def test_deleting_a_session_removes_the_local_cli_copies_too(
    live: LiveServer, live_key: str, model_server: Any
) -> None:
    import asyncio

    async with live.client(live_key) as client:
        sid = (await client.post("/api/v1/query/single", json={"prompt": model_server.marker(["ok"])})).json()[
            "session_id"
        ]
        copies = list(live.settings.data_dir.glob(f"cli/*/config/projects/*/{sid}.jsonl"))
        assert copies
        assert (await client.delete(f"/api/v1/sessions/{sid}")).status_code == 204
        for _ in range(50):
            if not any(path.exists() for path in copies):
                break
            await asyncio.sleep(0.1)
        assert not any(path.exists() for path in copies)
        assert (await client.get(f"/api/v1/sessions/{sid}/messages")).status_code == 404
