"""Session rules: listing, reading, tagging/titling and deleting a key's sessions.

Every lookup is by (id, owner): another key's session and an unknown id raise the same
:class:`SessionNotFound`. An expired session raises :class:`SessionExpired` (410) on read and update; it can
still be deleted, which removes its remaining row. The service never commits: the request edge does.
"""

from __future__ import annotations

from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.config import Settings
from claude_agent_api.models import AgentSession, SessionStatus
from claude_agent_api.models.base import utcnow
from claude_agent_api.sessions import expiry
from claude_agent_api.sessions.errors import SessionLocked, SessionNotFound
from claude_agent_api.sessions.repository import SessionFilters, SessionRepository
from claude_agent_api.sessions.schemas import (
    RunSummary,
    SessionDetail,
    SessionListQuery,
    SessionPage,
    SessionRead,
    SessionUpdate,
    encode_cursor,
)

log = structlog.get_logger("claude_agent_api.sessions")


class RunControl(Protocol):
    """What deleting needs from the run manager: stop the session's run, close its kept-warm agent."""

    async def interrupt_session(self, session_id: str) -> bool: ...

    async def release_warm(self, session_id: str, *, forget_files_of: str | None = None) -> None: ...


class SessionService:
    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.repo = SessionRepository(db)
        self.settings = settings

    def to_read(self, row: AgentSession) -> SessionRead:
        """The response for ``row``, with the status a client sees (``expired`` once lapsed)."""
        lapsed = expiry.is_expired(row, self.settings)
        status = SessionStatus.EXPIRED.value if lapsed else row.status
        return SessionRead.from_row(row, status=status, expires_at=expiry.expires_at(row, self.settings))

    async def get_usable(self, owner_key_id: str, session_id: str) -> AgentSession:
        """The caller's session, neither deleted nor expired (404 / 410 otherwise)."""
        row = await self.repo.get_owned(session_id, owner_key_id)
        if row is None:
            raise SessionNotFound()
        expiry.ensure_not_expired(row, self.settings)
        return row

    async def list(self, owner_key_id: str, query: SessionListQuery) -> SessionPage:
        """One page (one statement) plus, unless the first page holds every match, one count statement."""
        position = query.position()
        filters = SessionFilters(
            statuses=[s.value for s in query.status],
            model=query.model,
            created_after=query.created_after,
            created_before=query.created_before,
            tags=query.tag,
            parent_session_id=query.parent_session_id,
            expiry_cutoff=expiry.expiry_cutoff(self.settings),
        )
        rows = list(await self.repo.list_page(owner_key_id, filters, after=position, limit=query.limit + 1))
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        if position is None and not has_more:
            total = len(rows)
        else:
            total = await self.repo.count(owner_key_id, filters)
        last = rows[-1] if has_more else None
        return SessionPage(
            data=[self.to_read(r) for r in rows],
            total=total,
            has_more=has_more,
            next_cursor=encode_cursor(last.last_activity_at, last.id) if last else None,
        )

    async def read(self, owner_key_id: str, session_id: str) -> SessionDetail:
        """One statement: the session and its latest run."""
        found = await self.repo.get_with_last_run(session_id, owner_key_id)
        if found is None:
            raise SessionNotFound()
        row, run = found
        expiry.ensure_not_expired(row, self.settings)
        return SessionDetail(
            **self.to_read(row).model_dump(), last_run=RunSummary.from_row(run) if run is not None else None
        )

    async def update(self, owner_key_id: str, session_id: str, body: SessionUpdate) -> SessionRead:
        row = await self.get_usable(owner_key_id, session_id)
        fields = body.model_fields_set
        if not fields:
            return self.to_read(row)
        row.updated_at = utcnow()
        if "title" in fields:
            row.title = body.title
        if "metadata" in fields:
            row.metadata_ = body.metadata
        if "tags" in fields:
            await self.repo.set_tags(row, body.tags)
        return self.to_read(row)

    async def delete(self, owner_key_id: str, session_id: str, runs: RunControl) -> None:
        """Stop the session's run and warm agent, delete every row of it, then its own workspace directory.

        Expired sessions can be deleted too (their row is all that is left). The row is read without a lock:
        the run being interrupted records its end on the session row, which a lock held here would block.
        """
        row = await self.repo.get_owned(session_id, owner_key_id)
        if row is None:
            raise SessionNotFound()
        if not await runs.interrupt_session(session_id):
            raise SessionLocked(
                "The session's run did not stop in time; try again.",
                details={"session_id": session_id},
                headers={"Retry-After": "5"},
            )
        await runs.release_warm(session_id, forget_files_of=owner_key_id)
        cwd = row.cwd
        await self.repo.delete_everything(session_id)
        await expiry.remove_default_workdir(self.settings, owner_key_id, session_id, cwd)
        log.info("session.deleted", session_id=session_id)
