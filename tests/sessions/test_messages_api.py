"""``GET /api/v1/sessions/{id}/messages``: the stored transcript as typed, paginated messages, owner only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from claude_agent_api.app import create_app
from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.models import AgentSession, SessionStatus
from claude_agent_api.sessions.messages import router as messages_router
from claude_agent_api.sessions.repository import SessionRepository
from claude_agent_api.sessions.transcripts import TranscriptRepository
from tests.fixtures import SettingsFactory, app_state, running_app

ROUTE = "/api/v1/sessions/{session_id}/messages"


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The app, with the messages router mounted if ``create_app`` does not mount it yet."""
    settings = make_settings()
    app = create_app(settings)
    if not any(getattr(route, "path", None) == ROUTE for route in app.routes):
        app.include_router(messages_router)
    async with running_app(settings, app=app) as c:
        yield c


# -- factories ---------------------------------------------------------------------------------------------------


async def create_tenant(client: httpx.AsyncClient, name: str = "tenant") -> tuple[str, dict[str, str]]:
    """A new key: (key id, auth headers)."""
    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        row, secret = await ApiKeyService(db).create(name)
    return row.id, {"X-API-Key": secret}


async def create_session(
    client: httpx.AsyncClient, owner_key_id: str, entries: list[dict[str, Any]], **fields: Any
) -> str:
    session_id = str(uuid.uuid4())
    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        await SessionRepository(db).add(AgentSession(id=session_id, owner_key_id=owner_key_id, **fields))
        await TranscriptRepository(db).append(session_id, "", "-work", entries)
    return session_id


def user(uid: str, content: Any, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "user",
        "uuid": uid,
        "parentUuid": parent,
        "timestamp": "2026-11-24T05:41:37.397Z",
        "message": {"role": "user", "content": content},
        "cwd": "/srv/work",
        **extra,
    }


def assistant(uid: str, block: dict[str, Any], parent: str, message_id: str = "msg_1") -> dict[str, Any]:
    message = {"id": message_id, "role": "assistant", "model": "claude-opus-5-5", "content": [block], "usage": {}}
    return {
        "type": "assistant",
        "uuid": uid,
        "parentUuid": parent,
        "timestamp": "2026-11-24T05:41:38Z",
        "message": message,
    }


def bookkeeping(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "queue-operation", "operation": "enqueue", "content": "x"},
        {"type": "attachment", "uuid": f"att-{n}", "parentUuid": None, "attachment": {"type": "skill_listing"}},
        {"type": "last-prompt", "lastPrompt": "x"},
    ]


TOOL = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "echo hi"}}
TURN = [
    *bookkeeping(0),
    user("u1", "Say hi ü"),
    assistant("a1", {"type": "thinking", "thinking": "hmm", "signature": "c2ln"}, "u1"),
    assistant("a2", TOOL, "a1"),
    user("u2", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "hi", "is_error": False}], "a2"),
    user("meta", "<system-reminder>", "u2", isMeta=True),
    user("side", "sidechain", "u2", isSidechain=True),
    assistant("a3", {"type": "text", "text": "Done: hi"}, "u2", message_id="msg_2"),
    {"type": "cost-state", "totalCostUSD": 0.01},
]


async def test_the_conversation_comes_back_as_typed_messages(client: httpx.AsyncClient) -> None:
    key_id, headers = await create_tenant(client)
    session_id = await create_session(client, key_id, TURN)

    response = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": [
            {
                "type": "user",
                "uuid": "u1",
                "parent_uuid": None,
                "timestamp": "2026-11-24T05:41:37.397000Z",
                "content": [{"type": "text", "text": "Say hi ü"}],
                "model": None,
                "message_id": None,
            },
            {
                "type": "assistant",
                "uuid": "a1",
                "parent_uuid": "u1",
                "timestamp": "2026-11-24T05:41:38Z",
                "content": [{"type": "thinking", "thinking": "hmm"}],
                "model": "claude-opus-5-5",
                "message_id": "msg_1",
            },
            {
                "type": "assistant",
                "uuid": "a2",
                "parent_uuid": "a1",
                "timestamp": "2026-11-24T05:41:38Z",
                "content": [TOOL],
                "model": "claude-opus-5-5",
                "message_id": "msg_1",
            },
            {
                "type": "user",
                "uuid": "u2",
                "parent_uuid": "a2",
                "timestamp": "2026-11-24T05:41:37.397000Z",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "hi", "is_error": False}],
                "model": None,
                "message_id": None,
            },
            {
                "type": "assistant",
                "uuid": "a3",
                "parent_uuid": "u2",
                "timestamp": "2026-11-24T05:41:38Z",
                "content": [{"type": "text", "text": "Done: hi"}],
                "model": "claude-opus-5-5",
                "message_id": "msg_2",
            },
        ],
        "next_cursor": None,
        "has_more": False,
    }


async def test_subagent_transcripts_and_empty_sessions_show_no_messages(client: httpx.AsyncClient) -> None:
    key_id, headers = await create_tenant(client)
    session_id = await create_session(client, key_id, [])
    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        await TranscriptRepository(db).append(session_id, "subagents/agent-1", "-work", [user("s1", "sub")])

    response = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=headers)

    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None, "has_more": False}


async def test_pages_follow_the_cursor_to_the_end(client: httpx.AsyncClient) -> None:
    key_id, headers = await create_tenant(client)
    entries: list[dict[str, Any]] = []
    for n in range(7):  # visible messages interleaved with entries the route skips
        entries += [*bookkeeping(n), user(f"m{n}", f"message {n}"), user(f"meta{n}", "meta", isMeta=True)]
    session_id = await create_session(client, key_id, entries)
    url = f"/api/v1/sessions/{session_id}/messages"

    pages = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = (await client.get(url, headers=headers, params=params)).json()
        pages.append(([m["uuid"] for m in body["data"]], body["has_more"]))
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        params["cursor"] = body["next_cursor"]

    assert pages == [(["m0", "m1", "m2"], True), (["m3", "m4", "m5"], True), (["m6"], False)]
    exact = (await client.get(url, headers=headers, params={"limit": 7})).json()
    assert (len(exact["data"]), exact["has_more"], exact["next_cursor"]) == (7, False, None)
    everything = (await client.get(url, headers=headers)).json()
    assert [m["uuid"] for m in everything["data"]] == [f"m{n}" for n in range(7)]


async def test_messages_appended_later_show_up_after_the_last_cursor(client: httpx.AsyncClient) -> None:
    key_id, headers = await create_tenant(client)
    session_id = await create_session(client, key_id, [user("m0", "a"), user("m1", "b")])
    url = f"/api/v1/sessions/{session_id}/messages"
    first = (await client.get(url, headers=headers, params={"limit": 1})).json()

    async with unit_of_work(app_state(client.app).session_factory) as db:  # type: ignore[attr-defined]
        await TranscriptRepository(db).append(session_id, "", "-work", [user("m2", "c")])
    rest = (await client.get(url, headers=headers, params={"cursor": first["next_cursor"]})).json()

    assert [m["uuid"] for m in first["data"] + rest["data"]] == ["m0", "m1", "m2"]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"cursor": "not-a-cursor"}, {"cursor": "dGU6LTE"}, {"cursor": "eDox"}]
)
async def test_bad_limits_and_cursors_are_validation_errors(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    key_id, headers = await create_tenant(client)
    session_id = await create_session(client, key_id, TURN)

    response = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=headers, params=params)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_another_keys_deleted_and_unknown_sessions_are_the_same_404(client: httpx.AsyncClient) -> None:
    owner_id, owner = await create_tenant(client, "owner")
    _, intruder = await create_tenant(client, "intruder")
    theirs = await create_session(client, owner_id, TURN)
    deleted = await create_session(client, owner_id, TURN, status=SessionStatus.DELETED.value)

    answers = [
        await client.get(f"/api/v1/sessions/{theirs}/messages", headers=intruder),
        await client.get(f"/api/v1/sessions/{uuid.uuid4()}/messages", headers=intruder),
        await client.get(f"/api/v1/sessions/{deleted}/messages", headers=owner),
    ]

    assert [r.status_code for r in answers] == [404, 404, 404]
    assert answers[0].json()["error"]["code"] == "SESSION_NOT_FOUND"
    assert answers[0].content == answers[1].content == answers[2].content
    assert (await client.get(f"/api/v1/sessions/{theirs}/messages", headers=owner)).status_code == 200


async def test_a_key_is_required(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/sessions/{uuid.uuid4()}/messages")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTHENTICATION_ERROR"
