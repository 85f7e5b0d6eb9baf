"""All SQL about runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.models import HookDelivery, Run, RunEvent


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Run) -> Run:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, run_id: str) -> Run | None:
        return await self.session.get(Run, run_id)

    async def latest_for_session(self, session_id: str) -> Run | None:
        query = select(Run).where(Run.session_id == session_id).order_by(Run.created_at.desc(), Run.id.desc()).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_events(self, run_id: str, events: Sequence[tuple[int, dict[str, Any]]]) -> None:
        rows = [{"run_id": run_id, "seq": seq, "event": data} for seq, data in events]
        for start in range(0, len(rows), 1000):
            await self.session.execute(insert(RunEvent), rows[start : start + 1000])

    async def events_after(self, run_id: str, after: int) -> list[tuple[int, dict[str, Any]]]:
        query = select(RunEvent.seq, RunEvent.event).where(RunEvent.run_id == run_id, RunEvent.seq > after)
        return [(seq, event) for seq, event in (await self.session.execute(query.order_by(RunEvent.seq))).all()]

    async def hook_deliveries(self, session_id: str, *, limit: int) -> Sequence[HookDelivery]:
        query = (
            select(HookDelivery)
            .where(HookDelivery.session_id == session_id)
            .order_by(HookDelivery.created_at.desc(), HookDelivery.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()
