"""Humans in the loop: tool approvals and ``AskUserQuestion``, asked by a run on one instance, answered on any.

When the CLI asks whether a tool may run (permission mode ``default``, or rules that ask), the run emits a
``permission_request`` event (``question`` for ``AskUserQuestion``) and waits; the session and run show
``requires_action``. The pending request is recorded in the coordination backend (``approval:<id>``) so any
instance can check an answer against it; the first answer claims it atomically (a second gets 409
``APPROVAL_ALREADY_ANSWERED``) and is published on the control channel to the instance that holds the run. No
answer by ``expires_at`` is a deny — the SDK never times out a pending approval, so this expiry is the only
limit. An interrupt cancels a pending request cleanly.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from claude_agent_api.agent.runner import Approver, Decision, PermissionAsk
from claude_agent_api.agent.translate import Event
from claude_agent_api.errors import Conflict, NotFound
from claude_agent_api.kit.coordination import CoordinationBackend
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.models import RunStatus, SessionStatus
from claude_agent_api.models.base import utcnow
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.sessions.repository import SessionRepository

QUESTION_TOOL = "AskUserQuestion"
Publish = Callable[[dict[str, Any]], Awaitable[None]]


class ApprovalNotFound(NotFound):
    code = "APPROVAL_NOT_FOUND"
    default_message = "No pending request with this id in this session."


class ApprovalAlreadyAnswered(Conflict):
    code = "APPROVAL_ALREADY_ANSWERED"
    default_message = "This request has already been answered (or has expired)."


def _pending_key(request_id: str) -> str:
    return f"approval:{request_id}"


def _closed_key(request_id: str) -> str:
    return f"approval-closed:{request_id}"


def _request_event(request: PermissionAsk, request_id: str, expires_at: str) -> Event:
    if request.tool_name == QUESTION_TOOL:
        return {
            "type": "question",
            "question_id": request_id,
            "questions": request.input.get("questions", []),
            "tool_use_id": request.tool_use_id,
            "agent_id": request.agent_id,
            "expires_at": expires_at,
        }
    return {
        "type": "permission_request",
        "request_id": request_id,
        "tool_name": request.tool_name,
        "input": request.input,
        "suggestions": request.suggestions,
        "tool_use_id": request.tool_use_id,
        "agent_id": request.agent_id,
        "title": request.title,
        "description": request.description,
        "decision_reason": request.decision_reason,
        "blocked_path": request.blocked_path,
        "expires_at": expires_at,
    }


class Approvals:
    def __init__(self, coordination: CoordinationBackend, publish: Publish, session_factory: SessionFactory) -> None:
        self.coordination = coordination
        self.publish = publish
        self.session_factory = session_factory
        self._pending: dict[str, asyncio.Future[Decision]] = {}

    # -- the run's side -------------------------------------------------------------------------------------

    def approver(
        self, run_id: str, session_id: str, emit: Callable[[Event], Awaitable[None]], timeout: float
    ) -> Approver:
        async def ask(request: PermissionAsk) -> Decision:
            return await self._ask(run_id, session_id, emit, request, timeout)

        return ask

    async def _ask(
        self,
        run_id: str,
        session_id: str,
        emit: Callable[[Event], Awaitable[None]],
        request: PermissionAsk,
        wait_seconds: float,
    ) -> Decision:
        request_id = str(uuid.uuid4())
        expires_at = (utcnow() + timedelta(seconds=wait_seconds)).isoformat()
        record: dict[str, Any] = {
            "run_id": run_id,
            "session_id": session_id,
            "kind": "question" if request.tool_name == QUESTION_TOOL else "permission",
            "input": request.input,
        }
        await self.coordination.set_value(_pending_key(request_id), json.dumps(record), ttl=wait_seconds + 60)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._set_waiting(run_id, session_id, waiting=True)  # before the event: clients see it at once
            await emit(_request_event(request, request_id, expires_at))
            try:
                return await asyncio.wait_for(asyncio.shield(future), wait_seconds)
            except TimeoutError:
                if await self.coordination.delete_value(_pending_key(request_id)):
                    await self.coordination.set_value(_closed_key(request_id), "expired", ttl=3600)
                    expired = {"id": request_id, "tool_name": request.tool_name}
                    await emit(
                        {
                            "type": "message",
                            "role": "system",
                            "content": [],
                            "subtype": "request_expired",
                            "data": expired,
                        }
                    )
                    return Decision(allow=False, message="Nobody answered before the request expired.")
                return await future  # an answer claimed it at the last moment: it is on its way
        finally:
            self._pending.pop(request_id, None)
            await self._set_waiting(run_id, session_id, waiting=False)

    async def _set_waiting(self, run_id: str, session_id: str, *, waiting: bool) -> None:
        async with unit_of_work(self.session_factory) as db:
            run = await RunRepository(db).get(run_id)
            if run is not None and not RunStatus(run.status).is_final:
                run.status = (RunStatus.REQUIRES_ACTION if waiting else RunStatus.RUNNING).value
            await SessionRepository(db).set_status(
                session_id, SessionStatus.REQUIRES_ACTION if waiting else SessionStatus.RUNNING
            )

    def resolve(self, message: dict[str, Any]) -> None:
        """An answer arrived on the control channel; resolve it if the request waits on this instance."""
        future = self._pending.get(str(message.get("request_id")))
        if future is not None and not future.done():
            future.set_result(
                Decision(
                    allow=bool(message.get("allow")),
                    updated_input=message.get("updated_input"),
                    message=str(message.get("message") or ""),
                    interrupt=bool(message.get("interrupt")),
                )
            )

    # -- the answering side (any instance) ------------------------------------------------------------------

    async def pending(self, session_id: str, request_id: str, kind: str) -> dict[str, Any]:
        """The pending request's record (run, session, kind, tool input); 404 / 409 when there is none."""
        raw = await self.coordination.get_value(_pending_key(request_id))
        record: dict[str, Any] | None = json.loads(raw) if raw else None
        if record is None or record.get("session_id") != session_id or record.get("kind") != kind:
            if record is None and await self.coordination.get_value(_closed_key(request_id)) is not None:
                raise ApprovalAlreadyAnswered()
            raise ApprovalNotFound()
        return record

    async def answer(self, session_id: str, request_id: str, kind: str, decision: Decision) -> None:
        """Claim the pending request (exactly one answer wins) and send the decision to the run's instance."""
        await self.pending(session_id, request_id, kind)
        if not await self.coordination.delete_value(_pending_key(request_id)):
            raise ApprovalAlreadyAnswered()
        await self.coordination.set_value(_closed_key(request_id), "answered", ttl=3600)
        await self.publish(
            {
                "action": "answer",
                "request_id": request_id,
                "allow": decision.allow,
                "updated_input": decision.updated_input,
                "message": decision.message,
                "interrupt": decision.interrupt,
            }
        )
