"""All SQL about sessions."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.models import AgentSession, SessionStatus


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

    async def get(self, session_id: str) -> AgentSession | None:
        return await self.session.get(AgentSession, session_id)

    async def set_status(self, session_id: str, status: SessionStatus) -> None:
        await self.session.execute(
            update(AgentSession).where(AgentSession.id == session_id).values(status=status.value)
        )
