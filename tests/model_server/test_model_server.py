"""Protocol-level tests of the scripted model server (httpx against the ``model_server`` fixture).

The real-CLI tests live in ``test_model_server_cli.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .app import DEFAULT_TEXT
from .reply import example_for_schema
from .script import Script, find_markers, parse_step, script_marker, strip_markers
from .server import ModelServer

TOOLS = [{"name": "Write", "description": "write", "input_schema": {"type": "object"}}]


@pytest.fixture
def client(model_server: ModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=model_server.base_url, timeout=10) as http:
        yield http


def main_body(prompt: str, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 1000,
        "stream": stream,
        "thinking": {"type": "adaptive"},
        "system": [{"type": "text", "text": "You are a Claude agent."}],
        "tools": TOOLS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        **extra,
    }


def post(client: httpx.Client, body: dict[str, Any], session: str | None = None, **headers: str) -> httpx.Response:
    headers = {"x-api-key": "test-key", **headers}
    if session:
        headers["x-claude-code-session-id"] = session
    return client.post("/v1/messages?beta=true", json=body, headers=headers)


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in response.text.strip().split("\n\n"):
        name, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == f"event: {event['type']}"
        events.append(event)
    return events


def assemble(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rebuild content blocks from stream events the way a client does."""
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            blocks.append(dict(event["content_block"]))
        elif event["type"] == "content_block_delta":
            delta, block = event["delta"], blocks[event["index"]]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text)
    return blocks


def test_stream_frames_in_order_and_tool_json_reassembles(client: httpx.Client, model_server: ModelServer) -> None:
    big_input = {"file_path": "/tmp/x.txt", "content": "line\n" * 20, "nested": {"a": [1, 2, 3]}}
    step = {"text": "Writing two files.", "tool_use": [{"name": "Write", "input": big_input}, {"name": "Read"}]}
    token = model_server.add_script([step])
    events = sse_events(post(client, main_body(f"go {token}")))
    types = [e["type"] for e in events]
    assert types[:2] == ["message_start", "ping"]
    assert types[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use", "tool_use"]
    assert starts[1]["content_block"]["input"] == {}
    for index in range(3):  # start, deltas, stop per block, blocks not interleaved
        own = [e["type"] for e in events if e.get("index") == index]
        assert own[0] == "content_block_start"
        assert own[-1] == "content_block_stop"
        assert set(own[1:-1]) == {"content_block_delta"}
    json_deltas = [e for e in events if e.get("index") == 1 and e["type"] == "content_block_delta"]
    assert len(json_deltas) > 1
    blocks = assemble(events)
    assert blocks[0]["text"] == "Writing two files."
    assert blocks[1]["input"] == big_input
    assert blocks[2]["input"] == {}
    assert blocks[1]["id"].startswith("toolu_")
    assert events[0]["message"]["usage"]["input_tokens"] > 0
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["output_tokens"] > 0


def test_thinking_block_streams_with_signature(client: httpx.Client, model_server: ModelServer) -> None:
    token = model_server.add_script([{"thinking": "Let me think about it.", "text": "Answer"}])
    blocks = assemble(sse_events(post(client, main_body(token))))
    assert blocks[0]["type"] == "thinking"
    assert blocks[0]["thinking"] == "Let me think about it."
    assert blocks[0]["signature"]
    assert blocks[1] == {"type": "text", "text": "Answer"}


def test_non_streaming_reply_and_exhausted_script(client: httpx.Client, model_server: ModelServer) -> None:
    token = model_server.add_script(["first", {"text": "second", "usage": {"input_tokens": 7, "output_tokens": 3}}])
    replies = [post(client, main_body(token, stream=False)).json() for _ in range(3)]
    assert [r["content"][0]["text"] for r in replies] == ["first", "second", "Done."]
    assert all(r["stop_reason"] == "end_turn" for r in replies)
    assert replies[1]["usage"]["input_tokens"] == 7
    assert replies[1]["usage"]["output_tokens"] == 3
    assert [(r["step"], r["exhausted"]) for r in model_server.requests(token=token)] == [
        (0, False),
        (1, False),
        (2, True),
    ]


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (401, "authentication_error"), (429, None)])
def test_error_steps(client: httpx.Client, model_server: ModelServer, status: int, kind: str | None) -> None:
    error: dict[str, Any] = {"status": status, "message": "scripted failure"}
    if kind:
        error["type"] = kind
    token = model_server.add_script([{"error": error}])
    response = post(client, main_body(token))
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": kind or "rate_limit_error", "message": "scripted failure"}


def test_in_stream_error(client: httpx.Client, model_server: ModelServer) -> None:
    token = model_server.add_script([{"error": {"status": 529, "in_stream": True}}])
    response = post(client, main_body(token))
    assert response.status_code == 200
    events = sse_events(response)
    assert [e["type"] for e in events] == ["message_start", "error"]
    assert events[1]["error"]["type"] == "overloaded_error"


def test_delay_and_chunk_delay(client: httpx.Client, model_server: ModelServer) -> None:
    token = model_server.add_script([{"delay": 0.3}, {"text": "slow text here", "chunk_delay": 0.05}])
    started = time.monotonic()
    assert post(client, main_body(token, stream=False)).json()["content"][0]["text"] == "Done."
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    events = sse_events(post(client, main_body(token)))
    assert time.monotonic() - started >= 0.05 * (len(events) - 1) * 0.9


def test_side_call_answers_schema_json_and_consumes_no_step(client: httpx.Client, model_server: ModelServer) -> None:
    token = model_server.add_script(["main reply"])
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    title_body = {
        "model": "claude-test",
        "max_tokens": 100,
        "stream": True,
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "messages": [{"role": "user", "content": f"<session>{token}</session> Write the title"}],
    }
    title = assemble(sse_events(post(client, title_body)))[0]["text"]
    assert isinstance(json.loads(title)["title"], str)
    assert assemble(sse_events(post(client, main_body(token))))[0]["text"] == "main reply"
    no_tools_main = main_body(token)
    del no_tools_main["tools"]  # a run with tools=[] keeps its thinking config: still a main request
    assert assemble(sse_events(post(client, no_tools_main)))[0]["text"] == "Done."


def test_marker_script_is_keyed_by_session(client: httpx.Client) -> None:
    prompt = "hi " + script_marker(["one", "two"])
    sessions = [str(uuid.uuid4()), str(uuid.uuid4())]
    texts = [assemble(sse_events(post(client, main_body(prompt), s)))[0]["text"] for s in sessions * 2]
    assert texts == ["one", "one", "two", "two"]


def test_session_registered_script_and_default_text(client: httpx.Client, model_server: ModelServer) -> None:
    session = str(uuid.uuid4())
    model_server.add_script(["by session"], session_id=session)
    assert assemble(sse_events(post(client, main_body("no token here"), session)))[0]["text"] == "by session"
    unscripted = assemble(sse_events(post(client, main_body("nothing"), str(uuid.uuid4()))))
    assert unscripted[0]["text"] == DEFAULT_TEXT


def test_subagent_lanes(client: httpx.Client, model_server: ModelServer) -> None:
    token = model_server.add_script(
        [
            "main 1",
            {"agent": "You are the reviewer", "text": "review 1"},
            {"agent": "TASK-B", "text": "task b"},
            {"agent": "*", "text": "any other subagent"},
            "main 2",
            {"agent": "You are the reviewer", "text": "review 2"},
        ]
    )
    session = str(uuid.uuid4())
    sub = {"x-claude-code-agent-id": "a123"}
    reviewer = main_body("please review", system=[{"type": "text", "text": "You are the reviewer. Be strict."}])
    texts = [
        assemble(sse_events(post(client, body, session, **headers)))[0]["text"]
        for body, headers in [
            (main_body(f"start {token} You are the reviewer"), {}),  # main requests never use agent lanes
            (reviewer, sub),
            (main_body("do TASK-B now"), sub),
            (main_body("something else"), sub),
            (reviewer, sub),
            (main_body("main again"), {}),
            (reviewer, sub),
        ]
    ]
    assert texts == ["main 1", "review 1", "task b", "any other subagent", "review 2", "main 2", "Done."]
    lanes = [r["lane"] for r in model_server.requests(session_id=session)]
    assert lanes == [None, "You are the reviewer", "TASK-B", "*", "You are the reviewer", None, "You are the reviewer"]


def test_subagent_prompt_marker_gives_a_separate_script(client: httpx.Client, model_server: ModelServer) -> None:
    session = str(uuid.uuid4())
    model_server.add_script(["main 1", "main 2"], session_id=session)
    sub_prompt = "Do the side task " + script_marker(["sub 1"])
    sub = {"x-claude-code-agent-id": "a9"}
    texts = [
        assemble(sse_events(post(client, body, session, **headers)))[0]["text"]
        for body, headers in [
            (main_body("start"), {}),
            (main_body(sub_prompt), sub),
            (main_body(sub_prompt), sub),
            (main_body("start"), {}),  # the subagent's marker did not capture the session
        ]
    ]
    assert texts == ["main 1", "sub 1", "Done.", "main 2"]


def test_recording_control_endpoints_and_reset() -> None:
    with ModelServer() as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        response = http.post("/_scripts", json={"steps": ["via http"], "token": "tok-http"})
        assert response.json() == {"token": "tok-http"}
        assert http.post("/_scripts", json={"steps": [{"bogus": 1}]}).status_code == 400
        post(http, main_body("use tok-http"), "sess-1", authorization="Bearer secret")
        count = http.post("/v1/messages/count_tokens?beta=true", json={"messages": [{"role": "user", "content": "x"}]})
        assert count.json()["input_tokens"] > 0
        assert http.get("/v1/models").status_code == 404
        assert http.head("/api/hello").status_code == 200
        recorded = http.get("/_requests", params={"session_id": "sess-1"}).json()
        assert len(recorded) == 1
        entry = recorded[0]
        assert entry["headers"]["x-api-key"] == "<redacted>"
        assert entry["headers"]["authorization"] == "<redacted>"
        assert entry["body"]["messages"][0]["content"][0]["text"] == "use tok-http"
        assert (entry["script"], entry["step"], entry["kind"]) == ("tok-http", 0, "main")
        assert entry["reply"]["content"][0]["text"] == "via http"
        kinds = [r["kind"] for r in server.requests()]
        assert kinds == ["main", "count_tokens", "unknown", "hello"]
        assert http.post("/_reset").json() == {"ok": True}
        assert http.get("/_requests").json() == []
        assert post(http, main_body("use tok-http", stream=False)).json()["content"][0]["text"] == DEFAULT_TEXT
        assert server.requests()[0]["script"] is None


def test_bad_marker_is_reported_as_invalid_request(client: httpx.Client) -> None:
    response = post(client, main_body('[[script:[{"txt": "typo"}]]]'), str(uuid.uuid4()))
    assert response.status_code == 400
    assert "unknown step keys" in response.json()["error"]["message"]


def test_script_parsing() -> None:
    text = 'a [[script:["x ]] y", {"tool_use": {"name": "Bash", "input": {"command": "ls"}}}]]] b'
    [(_raw, value)] = find_markers(text)
    assert value[0] == "x ]] y"
    assert strip_markers(text) == "a  b"
    script = Script.from_json(value)
    assert script.steps[1].has_tool_use
    assert parse_step("hi").blocks == ({"type": "text", "text": "hi"},)
    explicit = parse_step({"content": [{"type": "tool_use", "name": "A"}, {"type": "text", "text": "after"}]})
    assert [b["type"] for b in explicit.blocks] == ["tool_use", "text"]
    for bad in [{"unknown": 1}, {"tool_use": {"input": {}}}, {"error": {"message": "no status"}}, 3]:
        with pytest.raises(ValueError):  # noqa: PT011
            parse_step(bad)
    with pytest.raises(ValueError, match="not closed"):
        find_markers("[[script:[]")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "tags": {"items": {"type": "string"}}}}
    assert example_for_schema(schema) == {"n": 1, "tags": ["scripted tags"]}


def test_runs_as_a_module() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.model_server", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(10)]
        env = dict(line.removeprefix("export ").strip().split("=", 1) for line in lines if line.startswith("export"))
        assert env["ANTHROPIC_API_KEY"] == "test-key"
        assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
        with httpx.Client(base_url=env["ANTHROPIC_BASE_URL"], timeout=10) as http:
            reply = post(http, main_body("hello", stream=False)).json()
        assert reply["content"][0]["text"] == DEFAULT_TEXT
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
