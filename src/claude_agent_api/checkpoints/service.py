"""Checkpoint rules: list a session's checkpoints; rewind its files (and optionally its conversation).

A rewind holds the session's run lock (``runs.manager.lock_name``) from start to end, so no run starts
meanwhile; a running run makes it fail with 409 ``SESSION_LOCKED``. It closes the session's warm agents (their
memory of the files and the conversation is stale afterwards), restores the session's saved CLI state into this
instance's config directory, resumes the session in a new CLI that calls ``rewind_files``, and saves the state
back. With ``truncate_conversation`` it records the cut point (applied by the next turn, see
:mod:`claude_agent_api.agent.checkpoints`) and removes this checkpoint and the later ones.

Errors::

    NotFound [404] └── CheckpointNotFound [404 CHECKPOINT_NOT_FOUND]
    Conflict [409] └── CheckpointingDisabled [409 CHECKPOINTING_DISABLED]
    AppError       └── RewindFailed [500 REWIND_FAILED]
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.agent import checkpoints as cli_state
from claude_agent_api.agent.options import build_options
from claude_agent_api.auth.service import Principal
from claude_agent_api.checkpoints.schemas import CheckpointList, CheckpointRead, RewindRequest, RewindResult
from claude_agent_api.errors import AppError, Conflict, NotFound
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.kit.workspace import key_workspace
from claude_agent_api.models import AgentSession, Checkpoint, SessionCut
from claude_agent_api.models.base import utcnow
from claude_agent_api.runs.context import run_context
from claude_agent_api.runs.manager import lock_name
from claude_agent_api.runs.schemas import RunOptions
from claude_agent_api.sessions.errors import SessionLocked
from claude_agent_api.sessions.service import SessionService
from claude_agent_api.state import AppState

log = structlog.get_logger("claude_agent_api.checkpoints")


class CheckpointNotFound(NotFound):
    code = "CHECKPOINT_NOT_FOUND"
    default_message = "No such checkpoint in this session."


class CheckpointingDisabled(Conflict):
    code = "CHECKPOINTING_DISABLED"
    default_message = "This session does not record file checkpoints (enable_file_checkpointing is off)."


class RewindFailed(AppError):
    code = "REWIND_FAILED"
    default_message = "The agent could not restore the files."


class CheckpointService:
    def __init__(self, db: AsyncSession, state: AppState) -> None:
        self.db = db
        self.state = state

    async def _session(self, principal: Principal, session_id: str) -> AgentSession:
        """The caller's usable session that records checkpoints (404 / 410 / 409 otherwise)."""
        row = await SessionService(self.db, self.state.settings).get_usable(principal.key_id, session_id)
        if not row.options.get("enable_file_checkpointing"):
            has_any = await self.db.scalar(select(exists().where(Checkpoint.session_id == session_id)))
            if not has_any:
                raise CheckpointingDisabled(details={"session_id": session_id})
        return row

    async def list_for(self, principal: Principal, session_id: str) -> CheckpointList:
        await self._session(principal, session_id)
        rows = await self.db.scalars(
            select(Checkpoint)
            .where(Checkpoint.session_id == session_id)
            .order_by(Checkpoint.created_at, Checkpoint.user_message_uuid)
        )
        return CheckpointList(data=[CheckpointRead.from_row(row) for row in rows])

    async def rewind(self, principal: Principal, session_id: str, body: RewindRequest) -> RewindResult:
        session = await self._session(principal, session_id)
        checkpoint = await self.db.get(Checkpoint, (session_id, body.checkpoint_id))
        if checkpoint is None:
            raise CheckpointNotFound(details={"checkpoint_id": body.checkpoint_id})
        later = list(
            await self.db.scalars(
                select(Checkpoint).where(
                    Checkpoint.session_id == session_id, Checkpoint.created_at >= checkpoint.created_at
                )
            )
        )
        files = list(dict.fromkeys(path for row in later for path in row.files_changed))

        name, token = lock_name(session_id), f"rewind-{uuid.uuid4()}"
        coordination, settings = self.state.coordination, self.state.settings
        if await coordination.acquire_lock(name, settings.session_lock_ttl, token) is None:
            ttl = await coordination.lock_ttl(name)
            raise SessionLocked(
                details={"session_id": session_id, "run_id": await coordination.lock_owner(name)},
                headers={"Retry-After": str(max(1, math.ceil(ttl or 1)))},
            )
        try:
            await self._rewind_locked(principal, session, body, checkpoint, later)
        finally:
            await coordination.release_lock(name, token)
        log.info(
            "checkpoints.rewound",
            session_id=session_id,
            checkpoint=body.checkpoint_id,
            truncated=body.truncate_conversation,
        )
        return RewindResult(
            session_id=session_id, checkpoint_id=body.checkpoint_id, truncated=body.truncate_conversation, files=files
        )

    async def _rewind_locked(
        self,
        principal: Principal,
        session: AgentSession,
        body: RewindRequest,
        checkpoint: Checkpoint,
        later: Sequence[Checkpoint],
    ) -> None:
        state, sid = self.state, session.id
        # Warm agents hold a stale view of the files and the conversation: close them on every instance.
        await state.run_manager.runner.release(sid)
        await state.run_manager.release_warm(sid)

        workspace = key_workspace(state.settings.effective_workspace_root, principal.key_id)
        ctx = run_context(state.settings, principal, workspace, sid, session)
        options = build_options(RunOptions(enable_file_checkpointing=True), ctx)
        if state.settings.agent_cli_path is not None:
            options = dataclasses.replace(options, cli_path=state.settings.agent_cli_path)
        config = cli_state.config_dir(options)
        factory = state.session_factory
        await cli_state.restore_state(factory, sid, config)
        try:
            await cli_state.rewind_files(options, sid, body.checkpoint_id)
        except cli_state.CheckpointMissing as exc:
            raise CheckpointNotFound(str(exc), details={"checkpoint_id": body.checkpoint_id}) from exc
        except cli_state.RewindError as exc:
            raise RewindFailed(details={"reason": str(exc)[:1000]}) from exc
        finally:
            await cli_state.save_state(factory, sid, config)
        if not body.truncate_conversation:
            return
        found, resume_at = cli_state.cut_point(config, sid, checkpoint.user_message_uuid)
        if not found:
            raise RewindFailed("The checkpoint's prompt is not in the saved transcript: the conversation was not cut.")
        async with unit_of_work(factory) as db:
            await db.execute(delete(SessionCut).where(SessionCut.session_id == sid))
            db.add(
                SessionCut(
                    session_id=sid, checkpoint_id=checkpoint.user_message_uuid, resume_at=resume_at, created_at=utcnow()
                )
            )
            doomed = [row.user_message_uuid for row in later]
            await db.execute(
                delete(Checkpoint).where(Checkpoint.session_id == sid, Checkpoint.user_message_uuid.in_(doomed))
            )
