"""``GET /api/v1/sessions`` and ``GET/PATCH/DELETE /api/v1/sessions/{id}``.

Another key's session answers exactly like an unknown id (404 ``SESSION_NOT_FOUND``); an expired one answers
410 ``SESSION_EXPIRED`` with ``details.expired_at`` (it can still be deleted).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from claude_agent_api.auth.dependencies import CurrentKey
from claude_agent_api.dependencies import DbSession, State
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.sessions.schemas import SessionDetail, SessionListQuery, SessionPage, SessionRead, SessionUpdate
from claude_agent_api.sessions.service import SessionService

router = APIRouter(prefix=f"{API_PREFIX}/sessions", tags=["sessions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such session for this key."},
    410: {"description": "The session expired."},
}


@router.get("", response_model=SessionPage, summary="List the key's sessions, newest activity first")
async def list_sessions(
    principal: CurrentKey, state: State, db: DbSession, query: Annotated[SessionListQuery, Query()]
) -> SessionPage:
    return await SessionService(db, state.settings).list(principal.key_id, query)


@router.get("/{session_id}", response_model=SessionDetail, responses=_ERRORS, summary="Read one session")
async def read_session(session_id: str, principal: CurrentKey, state: State, db: DbSession) -> SessionDetail:
    return await SessionService(db, state.settings).read(principal.key_id, session_id)


@router.patch("/{session_id}", response_model=SessionRead, responses=_ERRORS, summary="Set title, tags, metadata")
async def update_session(
    session_id: str, body: SessionUpdate, principal: CurrentKey, state: State, db: DbSession
) -> SessionRead:
    return await SessionService(db, state.settings).update(principal.key_id, session_id, body)


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={404: _ERRORS[404]},
    summary="Delete a session and everything it holds",
)
async def delete_session(session_id: str, principal: CurrentKey, state: State, db: DbSession) -> Response:
    await SessionService(db, state.settings).delete(principal.key_id, session_id, state.run_manager)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
