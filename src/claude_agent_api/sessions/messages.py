"""``GET /api/v1/sessions/{session_id}/messages``: a session's conversation, read from its stored transcript.

The transcript (``transcript_entries``, written by the SDK's ``SessionStore``) holds many bookkeeping entries
(attachments, queue operations, cost state, mode markers…); this route returns only the conversation: the main
transcript's ``user`` and ``assistant`` entries that are not meta or sidechain entries, in the order they were
written, each as a typed message with the content blocks of run events (``text``, ``thinking``, ``tool_use``,
``tool_result``; other block types such as images are omitted). The CLI writes one assistant entry per content
block, so the blocks of one model reply arrive as consecutive messages sharing ``message_id``. Subagent
transcripts are not included. Entries left on an abandoned branch (a resume at an earlier message without a
fork) are listed too: this is the transcript as written, not a replay of the chain.

Pagination is by position: ``limit`` (1..500) messages per page and an opaque ``cursor`` from the previous
page's ``next_cursor`` (null, with ``has_more: false``, on the last page). Entries appended later show up on
later pages, never shift earlier ones.

A session that does not exist, was deleted, or belongs to another key is ``404 SESSION_NOT_FOUND``, the same
answer in all three cases.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.auth.dependencies import CurrentKey
from claude_agent_api.dependencies import DbSession
from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.runs.events import ContentBlock
from claude_agent_api.sessions.repository import SessionRepository
from claude_agent_api.sessions.transcripts import TranscriptRepository

router = APIRouter(prefix=API_PREFIX, tags=["sessions"])

MESSAGE_TYPES = ("user", "assistant")
_CURSOR_PREFIX = "te:"
_blocks_adapter: TypeAdapter[list[ContentBlock]] = TypeAdapter(list[ContentBlock])
_KNOWN_BLOCKS = {"text", "thinking", "tool_use", "tool_result"}


class TranscriptMessage(BaseModel):
    type: Literal["user", "assistant"]
    uuid: str
    parent_uuid: str | None = Field(default=None, description="The entry this one follows in the conversation.")
    timestamp: datetime | None = None
    content: list[ContentBlock]
    model: str | None = Field(default=None, description="Assistant messages: the model that wrote it.")
    message_id: str | None = Field(default=None, description="Assistant messages: the model reply it is part of.")


class MessagePage(BaseModel):
    data: list[TranscriptMessage]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        entry_id = int(raw.removeprefix(_CURSOR_PREFIX))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RequestValidationFailed.for_field(("query", "cursor"), "is not a cursor from this API") from None
    if entry_id < 0:
        raise RequestValidationFailed.for_field(("query", "cursor"), "is not a cursor from this API")
    return entry_id


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return []
    blocks = []
    for block in content:
        if isinstance(block, dict) and block.get("type") in _KNOWN_BLOCKS:
            kind = block["type"]
            if kind == "thinking":
                block = {"type": "thinking", "thinking": block.get("thinking", "")}
            elif kind == "tool_use":
                block = {k: block.get(k) for k in ("type", "id", "name", "input")}
            elif kind == "tool_result":
                block = {k: block.get(k) for k in ("type", "tool_use_id", "content", "is_error")}
            blocks.append(block)
    return blocks


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def to_message(entry: dict[str, Any]) -> TranscriptMessage | None:
    """The message for a transcript entry, or None for entries that are not part of the visible conversation."""
    kind = entry.get("type")
    if kind not in MESSAGE_TYPES or entry.get("isMeta") or entry.get("isSidechain") or entry.get("teamName"):
        return None
    uuid = entry.get("uuid")
    message = entry.get("message")
    if not isinstance(uuid, str) or not isinstance(message, dict):
        return None
    try:
        content = _blocks_adapter.validate_python(_blocks(message.get("content")))
    except ValidationError:
        return None  # a malformed entry is skipped rather than failing the whole page
    assistant = kind == "assistant"
    return TranscriptMessage(
        type=kind,
        uuid=uuid,
        parent_uuid=entry.get("parentUuid") if isinstance(entry.get("parentUuid"), str) else None,
        timestamp=_timestamp(entry.get("timestamp")),
        content=content,
        model=message.get("model") if assistant else None,
        message_id=message.get("id") if assistant else None,
    )


async def session_messages(
    db: AsyncSession, owner_key_id: str, session_id: str, *, cursor: str | None, limit: int
) -> MessagePage:
    """One page of the conversation of a session owned by ``owner_key_id``; :class:`SessionNotFound` otherwise."""
    await SessionRepository(db).require_owned(session_id, owner_key_id)
    return await read_messages(db, session_id, cursor=cursor, limit=limit)


async def read_messages(db: AsyncSession, session_id: str, *, cursor: str | None, limit: int) -> MessagePage:
    """One page of the session's conversation (no ownership check)."""
    after = decode_cursor(cursor) if cursor else 0
    repository = TranscriptRepository(db)
    found: list[tuple[int, TranscriptMessage]] = []
    while len(found) <= limit:  # one extra message tells whether there is a next page
        rows = await repository.page(session_id, after_id=after, limit=limit + 1, entry_types=MESSAGE_TYPES)
        found.extend((row_id, m) for row_id, entry in rows if (m := to_message(entry)) is not None)
        if len(rows) <= limit:
            break
        after = rows[-1][0]
    page = found[:limit]
    has_more = len(found) > limit
    return MessagePage(
        data=[m for _, m in page], next_cursor=encode_cursor(page[-1][0]) if has_more else None, has_more=has_more
    )


@router.get("/sessions/{session_id}/messages", response_model=MessagePage)
async def list_messages(
    session_id: str,
    principal: CurrentKey,
    db: DbSession,
    limit: int = Query(default=100, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=100),
) -> MessagePage:
    return await session_messages(db, principal.key_id, session_id, cursor=cursor, limit=limit)
