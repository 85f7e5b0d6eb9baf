"""The sessions REST API as a client sees it: listing, reading, updating and deleting, one key at a time."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from claude_agent_api.app import create_app
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.models import AgentSession, Base, RunStatus, SessionStatus, SessionTag
from tests.fixtures import SettingsFactory, app_state, create_key, running_app
from tests.sessions.factories import (
    create_run,
    create_session,
    create_transcript,
    key_id,
    mount_sessions_router,
    workdir,
)

URL = "/api/v1/sessions"


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(rate_limit_enabled=False)
    async with running_app(settings, app=mount_sessions_router(create_app(settings))) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def list_all(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    response = await client.get(URL, params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@contextmanager
def count_statements(client: httpx.AsyncClient) -> Iterator[list[str]]:
    engine = app_state(client.app).engine.sync_engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def rows_of(client: httpx.AsyncClient, session_id: str) -> dict[str, int]:
    """How many rows of every table belong to the session (its own row, or rows with its ``session_id``)."""
    counts: dict[str, int] = {}
    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        for table in Base.metadata.sorted_tables:
            column = table.c.get("session_id") if table.name != "sessions" else table.c.id
            if column is not None:
                counts[table.name] = (await db.execute(select(func.count()).where(column == session_id))).scalar_one()
    return counts


# -- listing -------------------------------------------------------------------------------------------------------


async def test_pages_cover_every_session_once_while_new_ones_arrive(client: httpx.AsyncClient) -> None:
    key, other = await create_key(client), await create_key(client, "other")
    base = datetime.now(UTC) - timedelta(hours=1)
    # Pairs share a timestamp so the id tie-break is exercised across page boundaries.
    mine = [await create_session(client, key, last_activity_at=base - timedelta(seconds=i // 2)) for i in range(25)]
    theirs = {(await create_session(client, other, last_activity_at=base)).id for _ in range(3)}
    expected = [s.id for s in sorted(mine, key=lambda s: (s.last_activity_at, s.id), reverse=True)]

    first = await list_all(client, key, limit=10)
    assert first["total"] == 25 and first["has_more"] and first["next_cursor"]
    newcomer = await create_session(client, key)  # newest of all: belongs before the cursor, never after it
    second = await list_all(client, key, limit=10, cursor=first["next_cursor"])
    third = await list_all(client, key, limit=10, cursor=second["next_cursor"])

    seen = [item["id"] for page in (first, second, third) for item in page["data"]]
    assert seen == expected
    assert [len(p["data"]) for p in (first, second, third)] == [10, 10, 5]
    assert second["total"] == third["total"] == 26
    assert not third["has_more"] and third["next_cursor"] is None
    assert not theirs & set(seen)
    assert (await list_all(client, key, limit=200))["data"][0]["id"] == newcomer.id
    assert {i["id"] for i in (await list_all(client, other))["data"]} == theirs


async def test_list_item_shows_metadata_totals_and_no_deleted_sessions(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    parent = await create_session(client, key)
    child = await create_session(
        client,
        key,
        parent_session_id=parent.id,
        title="Refactor",
        tags=["alpha", "beta"],
        metadata_={"ticket": 7},
        num_turns=3,
        num_runs=2,
        total_cost_usd=0.5,
        input_tokens=10,
        output_tokens=20,
        cache_read_input_tokens=30,
        cache_creation_input_tokens=40,
        last_run_id="run-1",
    )
    await create_session(client, key, status=SessionStatus.DELETED.value)

    body = await list_all(client, key)
    assert body["total"] == 2
    item = next(i for i in body["data"] if i["id"] == child.id)
    assert item["title"] == "Refactor" and item["tags"] == ["alpha", "beta"] and item["metadata"] == {"ticket": 7}
    assert item["parent_session_id"] == parent.id and item["cwd"] == f"sessions/{child.id}"
    assert item["status"] == "idle" and item["model"] == "claude-sonnet-4-5" and item["last_run_id"] == "run-1"
    assert item["totals"] == {
        "num_turns": 3,
        "num_runs": 2,
        "total_cost_usd": 0.5,
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": 30,
        "cache_creation_input_tokens": 40,
    }
    assert item["expires_at"] is None  # idle expiry is off


async def test_each_filter_narrows_the_list(client: httpx.AsyncClient) -> None:
    key, other = await create_key(client), await create_key(client, "other")
    now = datetime.now(UTC)
    old = await create_session(client, key, created_at=now - timedelta(days=3), tags=["red", "blue"])
    running = await create_session(client, key, status="running", model="claude-opus-4-1", tags=["red"])
    failed = await create_session(client, key, status="failed", parent_session_id=old.id)
    await create_session(client, other, status="running", tags=["red", "blue"], parent_session_id=old.id)

    async def ids(**params: Any) -> set[str]:
        body = await list_all(client, key, **params)
        assert body["total"] == len(body["data"])
        return {i["id"] for i in body["data"]}

    assert await ids() == {old.id, running.id, failed.id}
    assert await ids(status="running") == {running.id}
    assert await ids(status=["running", "failed"]) == {running.id, failed.id}
    assert await ids(model="claude-opus-4-1") == {running.id}
    assert await ids(created_before=(now - timedelta(days=1)).isoformat()) == {old.id}
    assert await ids(created_after=(now - timedelta(days=1)).isoformat()) == {running.id, failed.id}
    assert await ids(created_before=(now - timedelta(days=1)).replace(tzinfo=None).isoformat()) == {old.id}
    assert await ids(tag="red") == {old.id, running.id}
    assert await ids(tag=["red", "blue"]) == {old.id}
    assert await ids(tag=["red", "green"]) == set()
    assert await ids(parent_session_id=old.id) == {failed.id}
    assert await ids(tag="red", status="idle") == {old.id}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"cursor": "not-a-cursor!"}, "query.cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"a": "yesterday", "i": "x"}').decode()}, "query.cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"a": "2025-01-01T00:00:00", "i": "x"}').decode()}, "query.cursor"),
        ({"status": "sleeping"}, "query.status.0"),
        ({"created_after": "last week"}, "query.created_after"),
    ],
)
async def test_bad_list_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    key = await create_key(client)
    response = await client.get(URL, params=params, headers=auth(key))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["field"] == field


async def test_listing_200_sessions_takes_as_many_statements_as_listing_2(client: httpx.AsyncClient) -> None:
    few, many = await create_key(client, "few"), await create_key(client, "many")
    for _ in range(2):
        await create_session(client, few, tags=["a", "b"], metadata_={"k": "v"})
    for i in range(200):
        await create_session(client, many, tags=["a", "b", f"t{i}"], metadata_={"k": "v"})
    for key in (few, many):  # the first request of a key records its use: not what is measured here
        await list_all(client, key, limit=1)

    with count_statements(client) as small:
        assert len((await list_all(client, few, limit=200))["data"]) == 2
    with count_statements(client) as large:
        body = await list_all(client, many, limit=200)
    assert len(body["data"]) == 200 and all(len(i["tags"]) == 3 for i in body["data"])
    assert len(large) == len(small) == 2, (small, large)  # the key lookup and the page
    with count_statements(client) as paged:
        body = await list_all(client, many, limit=50, cursor=body["next_cursor"] or "")
    assert len(paged) == 3, paged  # the key lookup, the page, the count (200 sessions)
    assert body["total"] == 200


# -- reading one -------------------------------------------------------------------------------------------------


async def test_read_one_shows_the_latest_run_in_one_statement(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    parent = await create_session(client, key)
    session = await create_session(client, key, parent_session_id=parent.id, num_runs=1, total_cost_usd=0.25)
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    await create_run(client, session, created_at=earlier, total_cost_usd=0.25)
    latest = await create_run(client, session, status=RunStatus.RUNNING.value, stop_reason=None, finished_at=None)
    await list_all(client, key)

    with count_statements(client) as statements:
        response = await client.get(f"{URL}/{session.id}", headers=auth(key))
    assert response.status_code == 200, response.text
    assert len(statements) == 2, statements  # the key lookup and the session with its run
    body = response.json()
    assert body["id"] == session.id and body["parent_session_id"] == parent.id
    assert body["totals"]["total_cost_usd"] == 0.25 and body["totals"]["num_runs"] == 1
    run = body["last_run"]
    assert run["id"] == latest.id and run["status"] == "running" and run["finished_at"] is None
    assert run["stop_reason"] is None and run["prompt_preview"] == "hello" and run["total_cost_usd"] == 0.01

    fresh = await create_session(client, key)
    assert (await client.get(f"{URL}/{fresh.id}", headers=auth(key))).json()["last_run"] is None


async def test_other_keys_sessions_look_exactly_like_unknown_ones(client: httpx.AsyncClient) -> None:
    owner, intruder = await create_key(client, "owner"), await create_key(client, "intruder")
    session = await create_session(client, owner, title="mine", tags=["keep"], with_workdir=True)
    await create_run(client, session)
    unknown = "00000000-0000-4000-8000-000000000000"

    for method, body in (("GET", None), ("PATCH", {"title": "stolen"}), ("DELETE", None)):
        theirs = await client.request(method, f"{URL}/{session.id}", json=body, headers=auth(intruder))
        missing = await client.request(method, f"{URL}/{unknown}", json=body, headers=auth(intruder))
        assert theirs.status_code == missing.status_code == 404, (method, theirs.text)
        assert theirs.json() == missing.json()
        assert theirs.json()["error"]["code"] == "SESSION_NOT_FOUND"
        assert theirs.headers.get("content-type") == missing.headers.get("content-type")

    kept = (await client.get(f"{URL}/{session.id}", headers=auth(owner))).json()
    assert kept["title"] == "mine" and kept["tags"] == ["keep"]
    assert (await rows_of(client, session.id))["runs"] == 1
    assert workdir(client, session.owner_key_id, session.cwd).is_dir()


# -- updating ------------------------------------------------------------------------------------------------------


async def test_patch_sets_title_tags_and_metadata(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    session = await create_session(client, key, tags=["old"], title="before")
    update = {"title": "After", "tags": ["ci", "team:core", "ci"], "metadata": {"ticket": "X-1", "n": [1, 2]}}

    response = await client.patch(f"{URL}/{session.id}", json=update, headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "After" and body["tags"] == ["ci", "team:core"]
    assert body["metadata"] == {"ticket": "X-1", "n": [1, 2]}
    assert datetime.fromisoformat(body["updated_at"]) > session.updated_at
    assert {i["id"] for i in (await list_all(client, key, tag="team:core"))["data"]} == {session.id}
    assert (await list_all(client, key, tag="old"))["data"] == []
    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        stored = await db.get(AgentSession, session.id)
        tags = (await db.scalars(select(SessionTag.tag).where(SessionTag.session_id == session.id))).all()
    assert stored is not None and stored.title == "After" and stored.tags == ["ci", "team:core"]
    assert sorted(tags) == ["ci", "team:core"]

    cleared = await client.patch(f"{URL}/{session.id}", json={"title": None, "tags": []}, headers=auth(key))
    assert cleared.status_code == 200
    assert cleared.json()["title"] is None and cleared.json()["tags"] == []
    assert cleared.json()["metadata"] == {"ticket": "X-1", "n": [1, 2]}  # absent fields are left alone
    assert (await rows_of(client, session.id))["session_tags"] == 0


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"title": "x" * 501}, "title"),
        ({"tags": ["-starts-with-dash"]}, "tags.0"),
        ({"tags": ["ok", "has space"]}, "tags.1"),
        ({"tags": ["a" * 65]}, "tags.0"),
        ({"tags": [f"t{i}" for i in range(33)]}, "tags"),
        ({"tags": None}, "tags"),
        ({"metadata": {"blob": "x" * 16_400}}, "metadata"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"status": "idle"}, "status"),
    ],
)
async def test_patch_validation_names_the_field(client: httpx.AsyncClient, update: dict[str, Any], field: str) -> None:
    key = await create_key(client)
    session = await create_session(client, key, title="unchanged")
    response = await client.patch(f"{URL}/{session.id}", json=update, headers=auth(key))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["field"] == field
    assert (await client.get(f"{URL}/{session.id}", headers=auth(key))).json()["title"] == "unchanged"


# -- deleting ------------------------------------------------------------------------------------------------------


async def test_delete_removes_every_row_and_the_sessions_own_directory(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    session = await create_session(client, key, tags=["a", "b"], with_workdir=True)
    await create_run(client, session)
    await create_run(client, session, status=RunStatus.FAILED.value)
    await create_transcript(client, session.id, count=4)
    fork = await create_session(client, key, parent_session_id=session.id)
    neighbour = await create_session(client, key, tags=["a"], with_workdir=True)
    await create_transcript(client, neighbour.id, count=2)
    own_dir = workdir(client, session.owner_key_id, session.cwd)
    before = await rows_of(client, session.id)
    populated = {"sessions", "runs", "transcript_entries", "session_tags"}
    assert own_dir.is_dir() and all(before[name] for name in populated)

    response = await client.delete(f"{URL}/{session.id}", headers=auth(key))
    assert response.status_code == 204 and response.content == b""

    assert set((await rows_of(client, session.id)).values()) == {0}
    assert not own_dir.exists()
    assert (await client.get(f"{URL}/{session.id}", headers=auth(key))).status_code == 404
    assert (await client.delete(f"{URL}/{session.id}", headers=auth(key))).status_code == 404
    assert (await client.get(f"{URL}/{fork.id}", headers=auth(key))).json()["parent_session_id"] is None
    left = await rows_of(client, neighbour.id)
    assert left["sessions"] == 1 and left["session_tags"] == 1 and left["transcript_entries"] == 2
    assert workdir(client, neighbour.owner_key_id, neighbour.cwd).is_dir()


async def test_delete_keeps_a_directory_the_client_chose(client: httpx.AsyncClient) -> None:
    key = await create_key(client)
    shared = await create_session(client, key, cwd="projects/shared", with_workdir=True)
    also_shared = await create_session(client, key, cwd="projects/shared")
    owner = await key_id(client, key)

    assert (await client.delete(f"{URL}/{shared.id}", headers=auth(key))).status_code == 204
    assert (workdir(client, owner, "projects/shared") / "notes.txt").is_file()
    assert (await rows_of(client, shared.id))["sessions"] == 0
    assert (await client.get(f"{URL}/{also_shared.id}", headers=auth(key))).status_code == 200


async def test_delete_of_a_session_marked_running_whose_run_is_gone(client: httpx.AsyncClient) -> None:
    # No instance holds the session's lock (its run died with a crashed instance): nothing to wait for.
    key = await create_key(client)
    session = await create_session(client, key, status=SessionStatus.RUNNING.value, with_workdir=True)
    await create_run(client, session, status=RunStatus.RUNNING.value, finished_at=None)

    assert (await client.delete(f"{URL}/{session.id}", headers=auth(key))).status_code == 204
    assert set((await rows_of(client, session.id)).values()) == {0}
    assert not workdir(client, session.owner_key_id, session.cwd).exists()
