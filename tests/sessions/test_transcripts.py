"""Conformance suite of the SQL ``SessionStore`` (and the repository under it), on SQLite and PostgreSQL.

Besides our own contracts, the SDK's conformance harness runs against the store through a thin adapter that puts
the project key into the session id: our store keys transcripts by session id alone (see
``claude_agent_api.agent.store``), while the SDK's reference contracts expect project-key isolation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from claude_agent_sdk import SessionStore, get_session_messages_from_store
from claude_agent_sdk.testing import run_session_store_conformance
from claude_agent_sdk.types import SessionKey, SessionListSubkeysKey, SessionStoreEntry, SessionStoreListEntry
from sqlalchemy import delete, select

from claude_agent_api.agent.store import SqlSessionStore
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.models import TranscriptEntry
from claude_agent_api.sessions.transcripts import TranscriptRepository
from tests.fixtures import Backend
from tests.sessions import open_session_factory

SID = "7f6c0a52-5b1e-4d8e-9d43-2f0c1f1f0001"
OTHER = "7f6c0a52-5b1e-4d8e-9d43-2f0c1f1f0002"
SUB1 = "subagents/agent-a1"
SUB2 = "subagents/agent-b2"


@pytest.fixture
async def factory(backend: Backend) -> AsyncIterator[SessionFactory]:
    async with open_session_factory(backend.database_url) as session_factory:
        yield session_factory


@pytest.fixture
def store(factory: SessionFactory) -> SqlSessionStore:
    return SqlSessionStore(factory)


def key(session_id: str = SID, project_key: str = "-work-a", subpath: str | None = None) -> SessionKey:
    k: SessionKey = {"project_key": project_key, "session_id": session_id}
    if subpath is not None:
        k["subpath"] = subpath
    return k


def e(n: int, uid: str | None = None, **extra: Any) -> Any:
    entry: dict[str, Any] = {"type": "user", "n": n, **extra}
    if uid is not None:
        entry["uuid"] = uid
    return entry


async def rows(factory: SessionFactory, session_id: str = SID) -> list[tuple[str, str, str | None, str | None]]:
    """(subpath, project_key, uuid, entry_type) of the session's rows, in id order."""
    async with unit_of_work(factory) as db:
        query = (
            select(
                TranscriptEntry.subpath, TranscriptEntry.project_key, TranscriptEntry.uuid, TranscriptEntry.entry_type
            )
            .where(TranscriptEntry.session_id == session_id)
            .order_by(TranscriptEntry.id)
        )
        return [(a, b, c, d) for a, b, c, d in (await db.execute(query)).tuples()]


# -- append and load -------------------------------------------------------------------------------------------


async def test_append_then_load_keeps_call_order(store: SqlSessionStore) -> None:
    await store.append(key(), [e(1, "z"), e(2, "a")])
    await store.append(key(), [])
    await store.append(key(), [e(3), e(4, "m")])
    await store.append(key(), [e(5, "b")])

    assert await store.load(key()) == [e(1, "z"), e(2, "a"), e(3), e(4, "m"), e(5, "b")]


async def test_load_of_unknown_transcript_is_none(store: SqlSessionStore) -> None:
    assert await store.load(key()) is None
    await store.append(key(), [])
    assert await store.load(key()) is None
    await store.append(key(), [e(1)])
    assert await store.load(key(subpath=SUB1)) is None
    assert await store.load(key(OTHER)) is None


async def test_uuid_is_an_idempotency_key(store: SqlSessionStore, factory: SessionFactory) -> None:
    await store.append(key(), [e(1, "a"), e(2, "b")])
    await store.append(key(), [e(2, "b"), e(3, "c")])  # a retried batch overlapping a partial write
    await store.append(key(), [e(1, "a")])
    await store.append(key(), [e(4, "d"), e(4, "d")])  # twice in one batch

    assert await store.load(key()) == [e(1, "a"), e(2, "b"), e(3, "c"), e(4, "d")]
    assert [r[2] for r in await rows(factory)] == ["a", "b", "c", "d"]


async def test_entries_without_uuid_are_always_appended(store: SqlSessionStore) -> None:
    mode: Any = {"type": "mode", "mode": "normal"}
    await store.append(key(), [mode, mode])
    await store.append(key(), [mode])

    assert await store.load(key()) == [mode, mode, mode]


async def test_a_uuid_is_unique_per_transcript_only(store: SqlSessionStore) -> None:
    for k in (key(), key(subpath=SUB1), key(OTHER)):
        await store.append(k, [e(1, "same")])

    for k in (key(), key(subpath=SUB1), key(OTHER)):
        assert await store.load(k) == [e(1, "same")]


async def test_large_batch_keeps_every_entry_in_order(store: SqlSessionStore, factory: SessionFactory) -> None:
    batch = [e(i, f"u-{i}" if i % 3 else None) for i in range(1000)]
    await store.append(key(), batch)

    assert await store.load(key()) == batch
    async with unit_of_work(factory) as db:
        assert await TranscriptRepository(db).count(SID) == 1000


async def test_unicode_and_nested_json_round_trip(store: SqlSessionStore) -> None:
    entry: Any = {
        "type": "assistant",
        "uuid": "u-1",
        "message": {
            "content": [{"type": "text", "text": 'héllo 世界 🎉 שלום \u2028 "quoted" \\ back\nslash'}],
            "usage": {"input_tokens": 10, "nested": {"deep": [1, 2.5, None, True, False, {"k": []}]}},
        },
        "empty": {},
        "big": 2**53 + 1,
        "negative": -0.125,
        "ключ": "значение",
        "nul": "a\u0000b",
    }
    await store.append(key(), [entry])

    assert await store.load(key()) == [entry]


async def test_concurrent_appends_keep_every_entry(store: SqlSessionStore) -> None:
    async def writer(w: int) -> None:
        for b in range(10):
            batch: list[Any] = [e(i, f"w{w}-{b}-{i}", writer=w) for i in range(4)]
            batch.append({"type": "cost-state", "writer": w, "batch": b})  # no uuid
            batch.append(e(0, f"shared-{b}", writer=-1))  # every writer sends it: stored once
            await store.append(key(), batch)

    await asyncio.gather(*(writer(w) for w in range(6)))

    loaded: list[Any] | None = await store.load(key())
    assert loaded is not None
    assert len(loaded) == 6 * 10 * 5 + 10
    for w in range(6):
        mine = [x.get("uuid") for x in loaded if x.get("writer") == w and "uuid" in x]
        assert mine == [f"w{w}-{b}-{i}" for b in range(10) for i in range(4)]  # each writer's order holds
        assert [x["batch"] for x in loaded if x["type"] == "cost-state" and x["writer"] == w] == list(range(10))
    assert sorted(x["uuid"] for x in loaded if x.get("writer") == -1) == sorted(f"shared-{b}" for b in range(10))


async def test_without_on_conflict_existing_uuids_are_selected_first(
    factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TranscriptRepository, "_insert_ignoring_duplicates", lambda self: None)
    async with unit_of_work(factory) as db:
        await TranscriptRepository(db).append(SID, "", "p", [e(1, "a"), e(2)])
    async with unit_of_work(factory) as db:
        repository = TranscriptRepository(db)
        await repository.append(SID, "", "p", [e(1, "a"), e(2), e(3, "c"), e(3, "c")])
        assert await repository.load(SID) == [e(1, "a"), e(2), e(2), e(3, "c")]


# -- keys: session id, project key, subpaths ---------------------------------------------------------------------


async def test_loads_by_session_id_whatever_the_project_key(store: SqlSessionStore, factory: SessionFactory) -> None:
    await store.append(key(project_key="-work-a"), [e(1, "a")])
    await store.append(key(project_key="-work-a", subpath=SUB1), [e(1, "s")])
    await store.append(key(project_key="-work-b"), [e(2, "b")])  # resumed under another cwd

    assert await store.load(key(project_key="-elsewhere")) == [e(1, "a"), e(2, "b")]
    assert await store.load(key(project_key="-elsewhere", subpath=SUB1)) == [e(1, "s")]
    assert await store.list_subkeys({"project_key": "-elsewhere", "session_id": SID}) == [SUB1]
    assert [(r[0], r[1]) for r in await rows(factory)] == [("", "-work-a"), (SUB1, "-work-a"), ("", "-work-b")]


async def test_subpaths_are_isolated_and_listed(store: SqlSessionStore) -> None:
    await store.append(key(), [e(1, "m")])
    await store.append(key(subpath=SUB2), [e(2, "s2")])
    await store.append(key(subpath=SUB1), [e(3, "s1")])
    await store.append(key(OTHER, subpath="subagents/agent-x"), [e(4)])

    assert await store.load(key()) == [e(1, "m")]
    assert await store.load(key(subpath=SUB1)) == [e(3, "s1")]
    assert await store.load(key(subpath=SUB2)) == [e(2, "s2")]
    assert await store.list_subkeys({"project_key": "-work-a", "session_id": SID}) == [SUB1, SUB2]
    assert await store.list_subkeys({"project_key": "-work-a", "session_id": "never"}) == []


async def test_list_sessions_gives_main_transcripts_of_a_project_with_epoch_ms(store: SqlSessionStore) -> None:
    before = int(time.time() * 1000) - 1000
    await store.append(key(SID, "-p"), [e(1)])
    await store.append(key(OTHER, "-p", subpath=SUB1), [e(1)])  # a subagent transcript alone is no session
    await store.append(key(OTHER, "-q"), [e(1)])

    listed = await store.list_sessions("-p")
    assert [s["session_id"] for s in listed] == [SID]
    assert before <= listed[0]["mtime"] <= int(time.time() * 1000) + 1000
    assert [s["session_id"] for s in await store.list_sessions("-q")] == [OTHER]
    assert await store.list_sessions("-never") == []


# -- delete ------------------------------------------------------------------------------------------------------


async def test_delete_of_a_session_removes_all_its_transcripts(store: SqlSessionStore, factory: SessionFactory) -> None:
    await store.delete(key("never-written"))
    for k in (key(), key(subpath=SUB1), key(project_key="-work-b", subpath=SUB2), key(OTHER)):
        await store.append(k, [e(1)])

    await store.delete(key(project_key="-anywhere"))

    assert await rows(factory) == []
    assert await store.load(key(subpath=SUB1)) is None
    assert await store.list_subkeys({"project_key": "-work-a", "session_id": SID}) == []
    assert await store.load(key(OTHER)) == [e(1)]


async def test_delete_of_a_subpath_removes_only_it(store: SqlSessionStore) -> None:
    for k in (key(), key(subpath=SUB1), key(subpath=SUB2)):
        await store.append(k, [e(1)])

    await store.delete(key(subpath=SUB1))

    assert await store.load(key(subpath=SUB1)) is None
    assert await store.load(key(subpath=SUB2)) == [e(1)]
    assert await store.load(key()) == [e(1)]
    assert await store.list_subkeys({"project_key": "-work-a", "session_id": SID}) == [SUB2]


# -- the SDK's own harness and readers ----------------------------------------------------------------------------


class ProjectScoped(SessionStore):
    """Runs the SDK's reference contracts on our store: project key and session id together make the id."""

    list_session_summaries = SessionStore.list_session_summaries  # absent, as in the store

    def __init__(self, inner: SqlSessionStore) -> None:
        self.inner = inner

    @staticmethod
    def _key(k: SessionKey) -> SessionKey:
        scoped: SessionKey = {"project_key": k["project_key"], "session_id": f"{k['project_key']}/{k['session_id']}"}
        if subpath := k.get("subpath"):
            scoped["subpath"] = subpath
        return scoped

    async def append(self, key: SessionKey, entries: list[SessionStoreEntry]) -> None:
        await self.inner.append(self._key(key), entries)

    async def load(self, key: SessionKey) -> list[SessionStoreEntry] | None:
        return await self.inner.load(self._key(key))

    async def list_sessions(self, project_key: str) -> list[SessionStoreListEntry]:
        listed = await self.inner.list_sessions(project_key)
        return [{**s, "session_id": s["session_id"].removeprefix(f"{project_key}/")} for s in listed]

    async def delete(self, key: SessionKey) -> None:
        await self.inner.delete(self._key(key))

    async def list_subkeys(self, key: SessionListSubkeysKey) -> list[str]:
        return await self.inner.list_subkeys(
            self._key({"project_key": key["project_key"], "session_id": key["session_id"]})
        )


async def test_sdk_conformance_harness(factory: SessionFactory) -> None:
    async def fresh() -> SessionStore:
        async with unit_of_work(factory) as db:
            await db.execute(delete(TranscriptEntry))
        return ProjectScoped(SqlSessionStore(factory))

    await run_session_store_conformance(fresh)


async def test_sdk_reads_messages_from_the_store(store: SqlSessionStore) -> None:
    sid = str(uuid.uuid4())
    user: Any = {
        "type": "user",
        "uuid": "u1",
        "parentUuid": None,
        "sessionId": sid,
        "message": {"role": "user", "content": "hi"},
    }
    reply: Any = {
        "type": "assistant",
        "uuid": "a1",
        "parentUuid": "u1",
        "sessionId": sid,
        "message": {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
    }
    await store.append(key(sid), [{"type": "queue-operation"}, user, {"type": "attachment", "uuid": "x1"}, reply])

    messages = await get_session_messages_from_store(store, sid, directory="/somewhere/else")

    assert [(m.type, m.uuid) for m in messages] == [("user", "u1"), ("assistant", "a1")]
