"""Forks: a new session branched from another, optionally at a message, with its own id and a parent link.

The transcript is copied through the SDK's store-backed fork (every uuid remapped, ``forkedFrom`` stamped), so the
original is untouched and the fork resumes on any instance like any other session. The fork works in the same
directory as its parent.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.agent.store import SqlSessionStore, fork_transcript
from claude_agent_api.config import Settings
from claude_agent_api.errors import Conflict, RequestValidationFailed
from claude_agent_api.kit.workspace import key_workspace
from claude_agent_api.models import AgentSession, SessionStatus
from claude_agent_api.models.base import utcnow
from claude_agent_api.sessions.service import SessionService


class NothingToFork(Conflict):
    code = "NOTHING_TO_FORK"
    default_message = "The session has no conversation to fork yet."


async def fork_session(
    db: AsyncSession,
    settings: Settings,
    store: SqlSessionStore,
    owner_key_id: str,
    session_id: str,
    *,
    message_id: str | None,
    title: str | None,
) -> AgentSession:
    parent = await SessionService(db, settings).get_usable(owner_key_id, session_id)
    directory = str(key_workspace(settings.effective_workspace_root, owner_key_id) / parent.cwd)
    try:
        new_id = await fork_transcript(store, parent.id, directory=directory, up_to_message_id=message_id, title=title)
    except LookupError as exc:
        raise NothingToFork() from exc
    except ValueError as exc:
        raise RequestValidationFailed.for_field("message_id", f"not a message of this session ({exc})") from exc
    now = utcnow()
    fork = AgentSession(
        id=new_id,
        owner_key_id=owner_key_id,
        status=SessionStatus.IDLE.value,
        model=parent.model,
        cwd=parent.cwd,
        options=dict(parent.options or {}),
        title=title or (f"{parent.title} (fork)" if parent.title else None),
        tags=[],
        metadata_={},
        parent_session_id=parent.id,
        last_activity_at=now,
    )
    db.add(fork)
    await db.flush()
    return fork
