"""``GET /api/v1/sessions/{id}/checkpoints`` and ``POST /api/v1/sessions/{id}/rewind``.

Another key's session answers like an unknown one (404 ``SESSION_NOT_FOUND``); a session without file
checkpointing answers 409 ``CHECKPOINTING_DISABLED``; a rewind while a run holds the session answers 409
``SESSION_LOCKED``; an unknown checkpoint 404 ``CHECKPOINT_NOT_FOUND``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from claude_agent_api.auth.dependencies import CurrentKey
from claude_agent_api.checkpoints.schemas import CheckpointList, RewindRequest, RewindResult
from claude_agent_api.checkpoints.service import CheckpointService
from claude_agent_api.dependencies import DbSession, State
from claude_agent_api.kit.http import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/sessions", tags=["checkpoints"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such session for this key, or no such checkpoint."},
    409: {"description": "File checkpointing is off for this session, or a run holds it."},
    410: {"description": "The session expired."},
}


@router.get(
    "/{session_id}/checkpoints",
    response_model=CheckpointList,
    responses=_ERRORS,
    summary="List the session's file checkpoints, oldest first",
)
async def list_checkpoints(session_id: str, principal: CurrentKey, state: State, db: DbSession) -> CheckpointList:
    return await CheckpointService(db, state).list_for(principal, session_id)


@router.post(
    "/{session_id}/rewind",
    response_model=RewindResult,
    responses=_ERRORS,
    summary="Restore the workspace files to a checkpoint (optionally cutting the conversation there too)",
)
async def rewind(
    session_id: str, body: RewindRequest, principal: CurrentKey, state: State, db: DbSession
) -> RewindResult:
    return await CheckpointService(db, state).rewind(principal, session_id, body)
