"""Small dependencies that hand out what the lifespan built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.state import AppState


def get_state(request: Request) -> AppState:
    state = request.app.state.caa
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_db(state: State) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed before the response is sent, rolled back on error."""
    async with unit_of_work(state.session_factory) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_db, scope="function")]
