"""All SQL about sessions: reads for the API (one statement per page), tags, deletion and expiry.

``sessions.tags`` (JSON) is what responses show; ``session_tags`` rows mirror it for filtering and are kept in
sync by :meth:`SessionRepository.set_tags`. A session idle since before the expiry cutoff counts as ``expired``
in every filter even before the sweep has marked it (see :func:`effective_status`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer

from claude_agent_api.models import (
    AgentSession,
    Checkpoint,
    HookDelivery,
    Run,
    RunEvent,
    SessionCut,
    SessionFile,
    SessionStatus,
    SessionTag,
    TranscriptEntry,
)
from claude_agent_api.sessions.errors import SessionNotFound

# Statuses an idle timeout applies to: a running session (or one waiting for a human) is not idle.
EXPIRABLE_STATUSES = (SessionStatus.IDLE.value, SessionStatus.FAILED.value)


@dataclass(frozen=True)
class SessionFilters:
    """What a listing may ask for; ``expiry_cutoff`` is "idle since at most this instant means expired"."""

    statuses: Sequence[str] = ()
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    tags: Sequence[str] = ()
    parent_session_id: str | None = None
    expiry_cutoff: datetime | None = field(default=None)


@dataclass(frozen=True)
class ExpirableSession:
    id: str
    owner_key_id: str
    cwd: str
    last_activity_at: datetime


def effective_status(cutoff: datetime | None) -> ColumnElement[str]:
    """The status a client sees: ``expired`` once an expirable session has been idle past the cutoff."""
    if cutoff is None:
        return AgentSession.status.expression
    lapsed = and_(AgentSession.status.in_(EXPIRABLE_STATUSES), AgentSession.last_activity_at <= cutoff)
    return case((lapsed, literal(SessionStatus.EXPIRED.value)), else_=AgentSession.status)


def _conditions(owner_key_id: str, filters: SessionFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        AgentSession.owner_key_id == owner_key_id,
        AgentSession.status != SessionStatus.DELETED.value,
    ]
    if filters.statuses:
        conditions.append(effective_status(filters.expiry_cutoff).in_(list(filters.statuses)))
    if filters.model is not None:
        conditions.append(AgentSession.model == filters.model)
    if filters.created_after is not None:
        conditions.append(AgentSession.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(AgentSession.created_at < filters.created_before)
    if filters.parent_session_id is not None:
        conditions.append(AgentSession.parent_session_id == filters.parent_session_id)
    for tag in dict.fromkeys(filters.tags):
        conditions.append(exists().where(SessionTag.session_id == AgentSession.id, SessionTag.tag == tag))
    return conditions


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: AgentSession) -> AgentSession:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get_owned(self, session_id: str, owner_key_id: str, *, for_update: bool = False) -> AgentSession | None:
        """The session if it exists, is not deleted, and belongs to ``owner_key_id``; else None (no leak)."""
        query = select(AgentSession).where(
            AgentSession.id == session_id,
            AgentSession.owner_key_id == owner_key_id,
            AgentSession.status != SessionStatus.DELETED.value,
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def require_owned(self, session_id: str, owner_key_id: str) -> AgentSession:
        """:meth:`get_owned`, or :class:`SessionNotFound` (the same answer whether it is another key's or none)."""
        row = await self.get_owned(session_id, owner_key_id)
        if row is None:
            raise SessionNotFound()
        return row

    async def get(self, session_id: str) -> AgentSession | None:
        return await self.session.get(AgentSession, session_id)

    async def set_status(self, session_id: str, status: SessionStatus) -> None:
        await self.session.execute(
            update(AgentSession).where(AgentSession.id == session_id).values(status=status.value)
        )

    # -- reading for the API ------------------------------------------------------------------------------------

    async def list_page(
        self,
        owner_key_id: str,
        filters: SessionFilters,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[AgentSession]:
        """One statement: up to ``limit`` sessions after the keyset position, newest activity first."""
        conditions = _conditions(owner_key_id, filters)
        if after is not None:
            at, session_id = after
            conditions.append(
                or_(
                    AgentSession.last_activity_at < at,
                    and_(AgentSession.last_activity_at == at, AgentSession.id < session_id),
                )
            )
        query = (
            select(AgentSession)
            .options(defer(AgentSession.options, raiseload=True))
            .where(*conditions)
            .order_by(AgentSession.last_activity_at.desc(), AgentSession.id.desc())
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def count(self, owner_key_id: str, filters: SessionFilters) -> int:
        query = select(func.count()).select_from(AgentSession).where(*_conditions(owner_key_id, filters))
        return int((await self.session.execute(query)).scalar_one())

    async def get_with_last_run(self, session_id: str, owner_key_id: str) -> tuple[AgentSession, Run | None] | None:
        """One statement: the owned session and its most recently created run (running or finished)."""
        latest = (
            select(Run.id)
            .where(Run.session_id == AgentSession.id)
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(1)
            .correlate(AgentSession)
            .scalar_subquery()
        )
        last_run = aliased(Run)
        query = (
            select(AgentSession, last_run)
            .outerjoin(last_run, last_run.id == latest)
            .where(
                AgentSession.id == session_id,
                AgentSession.owner_key_id == owner_key_id,
                AgentSession.status != SessionStatus.DELETED.value,
            )
        )
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else (row[0], row[1])

    # -- writing ------------------------------------------------------------------------------------------------

    async def set_tags(self, row: AgentSession, tags: Sequence[str]) -> None:
        """Replace the session's tags: the JSON column shown to clients and the rows used for filtering."""
        wanted = list(dict.fromkeys(tags))
        row.tags = wanted
        await self.session.execute(delete(SessionTag).where(SessionTag.session_id == row.id))
        if wanted:
            self.session.add_all(SessionTag(session_id=row.id, tag=tag) for tag in wanted)
        await self.session.flush()

    async def purge_contents(self, session_ids: Sequence[str]) -> None:
        """Delete what the sessions hold (transcript entries, runs and their events, checkpoints and saved CLI
        files, hook deliveries) but keep the session rows and tags."""
        if not session_ids:
            return
        ids = list(session_ids)
        runs = select(Run.id).where(Run.session_id.in_(ids))
        await self.session.execute(delete(RunEvent).where(RunEvent.run_id.in_(runs)))
        for model in (TranscriptEntry, Checkpoint, SessionFile, SessionCut, HookDelivery):
            await self.session.execute(delete(model).where(model.session_id.in_(ids)))
        await self.session.execute(delete(Run).where(Run.session_id.in_(ids)))

    async def delete_everything(self, session_id: str) -> None:
        """Remove every row of the session: transcript entries, runs, tags and the session itself.

        Forks keep existing; their ``parent_session_id`` is cleared (``ON DELETE SET NULL``), done here explicitly
        too so it holds whatever the database enforces.
        """
        await self.purge_contents([session_id])
        await self.session.execute(delete(SessionTag).where(SessionTag.session_id == session_id))
        await self.session.execute(
            update(AgentSession).where(AgentSession.parent_session_id == session_id).values(parent_session_id=None)
        )
        await self.session.execute(delete(AgentSession).where(AgentSession.id == session_id))

    # -- expiry -------------------------------------------------------------------------------------------------

    async def lock_expirable(self, cutoff: datetime, limit: int) -> list[ExpirableSession]:
        """Up to ``limit`` sessions idle since at most ``cutoff``, locked (skipping ones another sweeper holds)."""
        query = (
            select(AgentSession.id, AgentSession.owner_key_id, AgentSession.cwd, AgentSession.last_activity_at)
            .where(AgentSession.status.in_(EXPIRABLE_STATUSES), AgentSession.last_activity_at <= cutoff)
            .order_by(AgentSession.last_activity_at, AgentSession.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [ExpirableSession(*row) for row in (await self.session.execute(query)).all()]

    async def mark_expired(self, expired_at: Mapping[str, datetime]) -> None:
        """Set ``status=expired`` and each session's own ``expired_at`` (one executemany)."""
        if not expired_at:
            return
        params = [
            {"id": sid, "status": SessionStatus.EXPIRED.value, "expired_at": at} for sid, at in expired_at.items()
        ]
        await self.session.execute(update(AgentSession), params)
