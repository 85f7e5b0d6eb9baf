"""All SQL about runs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.models import Run


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Run) -> Run:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, run_id: str) -> Run | None:
        return await self.session.get(Run, run_id)
