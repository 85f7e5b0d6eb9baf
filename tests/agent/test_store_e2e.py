"""The SQL ``SessionStore`` with the real SDK and CLI against the scripted model, on SQLite and PostgreSQL.

A session started on one "instance" (config dir, HOME and cwd of its own) resumes on another whose config dir is
empty and whose cwd differs: the history comes from SQL alone. A fork gets its own entries; the original's stay
as they were. Temp roots are short (``/tmp/st-…``): the CLI puts unix sockets under them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AgentDefinition,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    Message,
    ResultMessage,
    SystemMessage,
    query,
)

from claude_agent_api.agent.store import SqlSessionStore
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.sessions.transcripts import TranscriptRepository
from tests.fixtures import Backend
from tests.model_server import ModelServer
from tests.sessions import open_session_factory

pytestmark = pytest.mark.e2e
RUN_TIMEOUT = 60


@pytest.fixture
def make_root() -> Iterator[Callable[[], Path]]:
    """Fresh short roots, each with an empty ``work`` dir (the cwd) and, via ``isolated_env``, an empty config."""
    made: list[Path] = []

    def make() -> Path:
        root = Path(tempfile.mkdtemp(prefix="st-"))
        (root / "work").mkdir()
        made.append(root)
        return root

    yield make
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SqlSessionStore]:
    async with open_session_factory(backend.database_url) as factory:
        yield SqlSessionStore(factory)


def options(server: ModelServer, root: Path, store: SqlSessionStore, **extra: Any) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(
        cwd=str(root / "work"),
        env=server.isolated_env(root, CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS="1"),
        permission_mode="bypassPermissions",
        setting_sources=[],
        session_store=store,
        session_store_flush="eager",
        **extra,
    )


async def run_client(prompt: str, opts: ClaudeAgentOptions) -> ResultMessage:
    """One turn the way the server's runner does it: a ``ClaudeSDKClient`` read until the session is idle."""
    messages: list[Message] = []
    async with asyncio.timeout(RUN_TIMEOUT), ClaudeSDKClient(opts) as client:
        await client.query(prompt)
        async for message in client.receive_messages():
            messages.append(message)
            if isinstance(message, SystemMessage) and message.data.get("state") == "idle":
                break
    [result] = [m for m in messages if isinstance(m, ResultMessage)]
    return result


async def run_query(prompt: str, opts: ClaudeAgentOptions) -> ResultMessage:
    async with asyncio.timeout(RUN_TIMEOUT):
        results = [m async for m in query(prompt=prompt, options=opts) if isinstance(m, ResultMessage)]
    return results[-1]


async def stored(store: SqlSessionStore, session_id: str, subpath: str = "") -> list[dict[str, Any]]:
    async with unit_of_work(store.session_factory) as db:
        return await TranscriptRepository(db).load(session_id, subpath) or []


def texts(entries: list[dict[str, Any]], kind: str) -> list[str]:
    """The text of the ``kind`` (user/assistant) entries (a string prompt, or text blocks)."""
    out = []
    for entry in entries:
        if entry.get("type") == kind:
            content = entry["message"]["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            out += [b["text"] for b in blocks if b.get("type") == "text"]
    return out


def history_sent(server: ModelServer, session_id: str) -> str:
    """The messages of the last main-loop model request of the session, as JSON text."""
    main = [r for r in server.requests(session_id=session_id, kind="main") if r["lane"] is None]
    return json.dumps(main[-1]["body"]["messages"], ensure_ascii=False)


async def test_resume_on_an_empty_config_dir_and_fork_from_sql(
    model_server: ModelServer, store: SqlSessionStore, make_root: Callable[[], Path]
) -> None:
    sid, fork_id = str(uuid.uuid4()), str(uuid.uuid4())
    call = {"subagent_type": "helper", "description": "help", "prompt": "Help: HELPER-LANE", "run_in_background": False}
    model_server.add_script(
        [
            {"tool_use": {"name": "Agent", "input": call}},
            {"agent": "HELPER-LANE", "text": "helper says hi"},
            {"text": "first answer 🍋"},
            {"text": "second answer"},
        ],
        session_id=sid,
    )
    model_server.add_script([{"text": "fork answer"}], session_id=fork_id)
    helper = AgentDefinition(description="Helps", prompt="You help.", tools=[])

    # Turn 1 on "instance A": entries land in SQL under the caller-chosen id, subagent under its subpath.
    first = await run_client(
        "Remember LEMON-7", options(model_server, make_root(), store, session_id=sid, agents={"helper": helper})
    )
    assert (first.session_id, first.result) == (sid, "first answer 🍋")
    after_first = await stored(store, sid)
    assert texts(after_first, "user") == ["Remember LEMON-7"]
    assert texts(after_first, "assistant") == ["first answer 🍋"]
    [subpath] = await store.list_subkeys({"project_key": "-ignored", "session_id": sid})
    assert subpath.startswith("subagents/agent-")
    assert "helper says hi" in texts(await stored(store, sid, subpath), "assistant")

    # Turn 2 on "instance B": empty config dir and HOME, another cwd (so another project key): history from SQL.
    second = await run_query("What did I ask you to remember?", options(model_server, make_root(), store, resume=sid))
    assert (second.session_id, second.result) == (sid, "second answer")
    request = history_sent(model_server, sid)
    assert "Remember LEMON-7" in request and "first answer 🍋" in request
    after_second = await stored(store, sid)
    assert after_second[: len(after_first)] == after_first  # appended to, never rewritten
    assert texts(after_second, "user") == ["Remember LEMON-7", "What did I ask you to remember?"]
    assert texts(after_second, "assistant") == ["first answer 🍋", "second answer"]
    uuids = [e["uuid"] for e in after_second if "uuid" in e]
    assert len(uuids) == len(set(uuids))

    # A fork (resume + fork_session, caller-chosen id) gets its own entries; the original's stay unchanged.
    fork_opts = options(model_server, make_root(), store, resume=sid, fork_session=True, session_id=fork_id)
    fork = await run_query("Fork here", fork_opts)
    assert (fork.session_id, fork.result) == (fork_id, "fork answer")
    request = history_sent(model_server, fork_id)
    assert "Remember LEMON-7" in request and "second answer" in request
    forked = await stored(store, fork_id)
    assert texts(forked, "user")[-1] == "Fork here"
    assert texts(forked, "assistant")[-1] == "fork answer"
    assert {e["sessionId"] for e in forked if "sessionId" in e} == {fork_id}
    assert await stored(store, sid) == after_second
