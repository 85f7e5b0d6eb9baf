"""What the WebSocket's client messages do: the same services as the REST routes, each in its own transaction."""

from __future__ import annotations

from typing import Any

from claude_agent_api.auth.service import Principal
from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.runs import interaction
from claude_agent_api.runs.errors import RunNotFound
from claude_agent_api.runs.manager import RunHandle
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.runs.schemas import PromptRequest
from claude_agent_api.sessions.errors import SessionNotFound
from claude_agent_api.sessions.repository import SessionRepository
from claude_agent_api.state import AppState


class SessionNotYours(Exception):
    """A message named a session that is not the caller's: the connection is closed (4404)."""


def _session_id(body: dict[str, Any]) -> str:
    value = body.pop("session_id", None)
    if not isinstance(value, str) or not value:
        raise RequestValidationFailed.for_field("session_id", "required")
    return value


class Commands:
    def __init__(self, state: AppState, principal: Principal) -> None:
        self.state = state
        self.principal = principal

    async def start(self, request: PromptRequest, session_id: str | None) -> RunHandle:
        await self.state.rate_limiter.hit("key", self.principal.key_id, "runs")
        try:
            async with unit_of_work(self.state.session_factory) as db:
                return await self.state.run_manager.start(self.principal, request, db, session_id=session_id)
        except SessionNotFound as exc:
            raise SessionNotYours from exc

    async def subscribe(self, body: dict[str, Any]) -> tuple[RunHandle, int]:
        session_id = _session_id(body)
        after = body.get("after", 0)
        if not isinstance(after, int) or after < 0:
            raise RequestValidationFailed.for_field("after", "a sequence number (>= 0)")
        async with self.state.session_factory() as db:
            if await SessionRepository(db).get_owned(session_id, self.principal.key_id) is None:
                raise SessionNotYours()  # over WebSocket this closes the connection (4404)
            repo = RunRepository(db)
            run_id = body.get("run_id")
            run = await repo.get(run_id) if isinstance(run_id, str) else await repo.latest_for_session(session_id)
        if run is None or run.session_id != session_id:
            raise RunNotFound(details={"session_id": session_id})
        return RunHandle(run_id=run.id, session_id=session_id), after

    async def control(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        session_id = _session_id(body)
        state, principal = self.state, self.principal
        try:
            async with unit_of_work(state.session_factory) as db:
                if kind == "interrupt":
                    result: Any = await interaction.interrupt_run(state, db, principal, session_id)
                elif kind == "permission_response":
                    request_id = str(body.pop("request_id", ""))
                    answer = interaction.PermissionAnswer.model_validate(body)
                    result = await interaction.answer_permission(state, db, principal, session_id, request_id, answer)
                elif kind == "answer":
                    question = interaction.QuestionAnswer.model_validate(body)
                    result = await interaction.answer_question(state, db, principal, session_id, question)
                else:
                    change = interaction.ControlRequest.model_validate(body)
                    result = await interaction.control_run(state, db, principal, session_id, change)
        except SessionNotFound as exc:
            raise SessionNotYours from exc
        dumped: dict[str, Any] = result.model_dump(mode="json")
        return dumped
