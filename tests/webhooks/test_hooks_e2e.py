"""Lifecycle hooks delivered to webhooks during real runs: PreToolUse decides (and fails closed), deliveries are
signed with the key's secret, logged and optionally streamed; unsafe targets get nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.models import KeyScope
from claude_agent_api.webhooks.signing import verify
from tests.fixtures import SettingsFactory, create_live_key
from tests.runs.test_query_e2e import key_workspace
from tests.support.live import LiveServer, live_server
from tests.support.watch import StreamWatcher

from .test_delivery import Receiver, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def hooked(e2e_settings: SettingsFactory) -> Iterator[LiveServer]:
    with live_server(e2e_settings(webhook_allow_private=["127.0.0.1"], webhook_retries=0)) as server:
        yield server


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        await receiver.stop()


async def start_receiver(started: list[Receiver], *replies: Reply) -> Receiver:
    receiver = Receiver(replies)
    await receiver.start()
    started.append(receiver)
    return receiver


async def tenant(server: LiveServer) -> tuple[str, str]:
    async with server.db() as db:
        row, key = await ApiKeyService(db).create("hooks")
        await db.commit()
    assert row.webhook_secret
    return key, row.webhook_secret


def decision(value: str, **extra: Any) -> Reply:
    return Reply(body=json.dumps({"decision": value, **extra}).encode(), headers={"content-type": "application/json"})


def bash_steps(path: Any) -> list[Any]:
    return [
        {"tool_use": {"name": "Bash", "input": {"command": f"echo ran > {path}", "description": "side effect"}}},
        "ok",
    ]


async def run_with_hook(
    server: LiveServer, key: str, url: str, script: str, cwd: str, **extra: Any
) -> list[dict[str, Any]]:
    body = {
        "prompt": script,
        "cwd": cwd,
        "permission_mode": "bypassPermissions",
        "webhooks": [{"url": url, "events": ["PreToolUse"], "matcher": "Bash", "timeout_seconds": 1}],
        "include_hook_events": True,
        **extra,
    }
    async with server.client(key) as client:
        watcher = StreamWatcher(client, "POST", "/api/v1/query", json=body)
        return await watcher.finish()


def tool_results(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for f in frames if f["event"] == "message" for b in f["data"]["content"] if b["type"] == "tool_result"]


async def test_a_pre_tool_use_deny_stops_the_command_and_the_reason_reaches_the_stream(
    hooked: LiveServer, receivers: list[Receiver], model_server: Any
) -> None:
    key, secret = await tenant(hooked)
    side = await key_workspace(hooked, key) / "deny" / "side.txt"
    receiver = await start_receiver(receivers, decision("deny", reason="no shell today"))
    frames = await run_with_hook(hooked, key, receiver.url(), model_server.marker(bash_steps(side)), "deny")
    assert not side.exists()
    assert "no shell today" in json.dumps(tool_results(frames))
    hook = next(f["data"] for f in frames if f["event"] == "hook")
    assert hook["event"] == "PreToolUse" and hook["decision"] == "deny" and hook["ok"] is True
    # The delivery is signed with the key's secret, and carries the tool call.
    [seen] = receiver.requests
    verify(secret, seen.headers, seen.body)
    payload = json.loads(seen.body)
    assert payload["type"] == "PreToolUse" and payload["data"]["tool_name"] == "Bash"
    assert "transcript_path" not in payload["data"] and "cwd" not in payload["data"]
    async with hooked.client(key) as client:
        log = (await client.get(f"/api/v1/sessions/{hook['session_id']}/hooks")).json()["data"]
    assert [(d["event"], d["decision"], d["ok"]) for d in log] == [("PreToolUse", "deny", True)]


@pytest.mark.parametrize(
    "reply", [Reply(status=500), Reply(delay=3.0), Reply(body=b"not json")], ids=["500", "timeout", "invalid"]
)
async def test_a_failing_pre_tool_use_webhook_denies(
    hooked: LiveServer, receivers: list[Receiver], reply: Reply, model_server: Any
) -> None:
    key, _ = await tenant(hooked)
    side = await key_workspace(hooked, key) / "fail" / "side.txt"
    receiver = await start_receiver(receivers, reply)
    frames = await run_with_hook(hooked, key, receiver.url(), model_server.marker(bash_steps(side)), "fail")
    assert not side.exists()
    assert len(receiver.requests) == 1  # PreToolUse is not retried
    hook = next(f["data"] for f in frames if f["event"] == "hook")
    assert hook["decision"] == "deny"
    assert tool_results(frames)[0]["is_error"] is True


async def test_an_allow_runs_the_tool_and_ask_turns_into_an_approval(
    hooked: LiveServer, receivers: list[Receiver], model_server: Any
) -> None:
    key, _ = await tenant(hooked)
    workspace = await key_workspace(hooked, key)
    allowed = await start_receiver(receivers, decision("allow"))
    frames = await run_with_hook(
        hooked, key, allowed.url(), model_server.marker(bash_steps(workspace / "allow" / "side.txt")), "allow"
    )
    assert (workspace / "allow" / "side.txt").read_text() == "ran\n"
    assert tool_results(frames)[0]["is_error"] in (None, False)

    asking = await start_receiver(receivers, decision("ask"))
    side = workspace / "ask" / "side.txt"
    body = {
        "prompt": model_server.marker(bash_steps(side)),
        "cwd": "ask",
        "permission_mode": "bypassPermissions",
        "webhooks": [{"url": asking.url(), "events": ["PreToolUse"], "timeout_seconds": 1}],
    }
    async with hooked.client(key) as client:
        watcher = StreamWatcher(client, "POST", "/api/v1/query", json=body)
        request = await watcher.wait_for("permission_request")
        await client.post(
            f"/api/v1/sessions/{request['session_id']}/permissions/{request['request_id']}", json={"decision": "allow"}
        )
        await watcher.finish()
    assert side.read_text() == "ran\n"


async def test_unsafe_webhook_targets_receive_nothing(
    e2e_settings: SettingsFactory, receivers: list[Receiver], model_server: Any
) -> None:
    with live_server(e2e_settings()) as server:  # no private targets allowed
        key, _ = await tenant(server)
        receiver = await start_receiver(receivers, decision("allow"))
        async with server.client(key) as client:
            refused = await client.post(
                "/api/v1/query", json={"prompt": "x", "webhooks": [{"url": receiver.url(), "events": ["Stop"]}]}
            )
        assert refused.status_code == 422
        assert refused.json()["error"]["details"]["errors"][0]["field"] == "webhooks.0.url"
        # A name that resolves to loopback passes the URL check but not the address check: the tool is denied.
        side = await key_workspace(server, key) / "dns" / "side.txt"
        frames = await run_with_hook(
            server, key, receiver.url(host="localhost"), model_server.marker(bash_steps(side)), "dns"
        )
        assert not side.exists()
        assert "PreToolUse webhook failed" in json.dumps(tool_results(frames))
    assert receiver.connections == 0


async def test_a_redirect_to_loopback_is_not_followed(
    hooked: LiveServer, receivers: list[Receiver], model_server: Any
) -> None:
    key, _ = await tenant(hooked)
    target = await start_receiver(receivers, decision("allow"))
    redirecting = await start_receiver(receivers, Reply(status=302, headers={"location": target.url()}))
    side = await key_workspace(hooked, key) / "redir" / "side.txt"
    await run_with_hook(hooked, key, redirecting.url(), model_server.marker(bash_steps(side)), "redir")
    assert not side.exists()
    assert len(redirecting.requests) == 1 and target.connections == 0


async def test_a_keys_default_webhooks_serve_runs_that_name_none(
    hooked: LiveServer, receivers: list[Receiver], model_server: Any
) -> None:
    key, _ = await tenant(hooked)
    admin_key = await create_live_key(hooked, "admin", KeyScope.ADMIN)
    receiver = await start_receiver(receivers, decision("deny", reason="house rules"))
    async with hooked.client(admin_key) as admin:
        keys = (await admin.get("/api/v1/keys")).json()["data"]
        key_id = next(k["id"] for k in keys if k["name"] == "hooks")
        hooks = [{"url": receiver.url(), "events": ["PreToolUse"], "matcher": "Bash", "timeout_seconds": 1}]
        updated = await admin.patch(f"/api/v1/keys/{key_id}", json={"default_webhooks": hooks})
        unsafe = await admin.patch(
            f"/api/v1/keys/{key_id}", json={"default_webhooks": [{"url": "http://10.0.0.8/x", "events": ["Stop"]}]}
        )
    assert updated.status_code == 200 and updated.json()["default_webhooks"][0]["url"] == receiver.url()
    assert unsafe.status_code == 422
    side = await key_workspace(hooked, key) / "defaults" / "side.txt"
    body = {"prompt": model_server.marker(bash_steps(side)), "cwd": "defaults", "permission_mode": "bypassPermissions"}
    async with hooked.client(key) as client:
        frames = await StreamWatcher(client, "POST", "/api/v1/query", json=body).finish()
    assert not side.exists() and len(receiver.requests) == 1
    assert "house rules" in json.dumps(tool_results(frames))


async def test_user_prompt_submit_and_post_tool_use_add_context(
    hooked: LiveServer, receivers: list[Receiver], model_server: Any
) -> None:
    key, _ = await tenant(hooked)
    context = Reply(body=json.dumps({"additional_context": "CONTEXT-FROM-HOOK"}).encode())
    prompt_hook = await start_receiver(receivers, context)
    token = model_server.add_script(
        [{"tool_use": {"name": "Bash", "input": {"command": "true", "description": "noop"}}}, "ok"]
    )
    body = {
        "prompt": f"go ({token})",
        "permission_mode": "bypassPermissions",
        "webhooks": [{"url": prompt_hook.url(), "events": ["UserPromptSubmit", "PostToolUse"], "timeout_seconds": 2}],
    }
    async with hooked.client(key) as client:
        await StreamWatcher(client, "POST", "/api/v1/query", json=body).finish()
    events = [json.loads(r.body)["type"] for r in prompt_hook.requests]
    assert events == ["UserPromptSubmit", "PostToolUse"]
    requests = [r for r in model_server.requests(token=token) if r["kind"] == "main"]
    assert "CONTEXT-FROM-HOOK" in json.dumps(requests[0]["body"]["messages"])  # from UserPromptSubmit
    assert json.dumps(requests[-1]["body"]["messages"]).count("CONTEXT-FROM-HOOK") >= 2  # and PostToolUse
