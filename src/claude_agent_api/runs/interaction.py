"""Talking to a running agent: interrupt it, answer its tool approvals and questions, change its permission mode
or model. Each works from any instance (the request is routed to the one that holds the run) and only for the
caller's own sessions (404 ``SESSION_NOT_FOUND`` otherwise)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.agent.runner import Decision
from claude_agent_api.auth.dependencies import CurrentKey
from claude_agent_api.auth.service import Principal
from claude_agent_api.dependencies import DbSession, State
from claude_agent_api.errors import RequestValidationFailed, ServiceUnavailable
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.runs.errors import NoActiveRun, NoLiveAgent
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.sessions.repository import SessionRepository
from claude_agent_api.state import AppState

router = APIRouter(prefix=f"{API_PREFIX}/sessions/{{session_id}}", tags=["runs"])
_RUNNING: dict[int | str, dict[str, Any]] = {409: {"description": "NO_ACTIVE_RUN / APPROVAL_ALREADY_ANSWERED"}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InterruptResult(BaseModel):
    session_id: str
    run_id: str
    stopped: bool = Field(description="The run had ended when this answer was sent.")


class PermissionAnswer(_Strict):
    decision: Literal["allow", "deny"]
    updated_input: dict[str, Any] | None = Field(default=None, description="With allow: run the tool with this input.")
    message: str | None = Field(default=None, max_length=4000, description="With deny: what the agent is told.")
    interrupt: bool = Field(default=False, description="With deny: also stop the run.")


class QuestionAnswer(_Strict):
    question_id: str
    answers: dict[str, str] = Field(
        description="The chosen label (or free text) per question, keyed by the question's text; "
        "several labels of a multi-select question are joined with ', '."
    )


class AnswerResult(BaseModel):
    session_id: str
    request_id: str
    decision: Literal["allow", "deny", "answered"]


class ControlRequest(_Strict):
    permission_mode: Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"] | None = None
    model: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:\-\[\]]{1,100}$")

    @model_validator(mode="after")
    def _something(self) -> ControlRequest:
        if self.permission_mode is None and self.model is None:
            raise ValueError("give permission_mode and/or model")
        return self


class ControlResult(BaseModel):
    session_id: str
    run_id: str
    permission_mode: str | None
    model: str | None


async def _owned(db: AsyncSession, session_id: str, key_id: str) -> None:
    await SessionRepository(db).require_owned(session_id, key_id)


# The actions, shared by these routes and the WebSocket commands.


async def interrupt_run(state: AppState, db: AsyncSession, principal: Principal, session_id: str) -> InterruptResult:
    await _owned(db, session_id, principal.key_id)
    run_id = await state.run_manager.running_run(session_id)
    if run_id is None:
        raise NoActiveRun(details={"session_id": session_id})
    stopped = await state.run_manager.interrupt_session(session_id)
    return InterruptResult(session_id=session_id, run_id=run_id, stopped=stopped)


async def answer_permission(
    state: AppState, db: AsyncSession, principal: Principal, session_id: str, request_id: str, body: PermissionAnswer
) -> AnswerResult:
    await _owned(db, session_id, principal.key_id)
    allow = body.decision == "allow"
    decision = Decision(
        allow=allow,
        updated_input=body.updated_input if allow else None,
        message=body.message or ("" if allow else "The user denied this tool use."),
        interrupt=body.interrupt and not allow,
    )
    await state.run_manager.approvals.answer(session_id, request_id, "permission", decision)
    return AnswerResult(session_id=session_id, request_id=request_id, decision=body.decision)


async def answer_question(
    state: AppState, db: AsyncSession, principal: Principal, session_id: str, body: QuestionAnswer
) -> AnswerResult:
    await _owned(db, session_id, principal.key_id)
    approvals = state.run_manager.approvals
    original = (await approvals.pending(session_id, body.question_id, "question"))["input"]
    asked = {q.get("question") for q in original.get("questions", []) if isinstance(q, dict)}
    unknown = sorted(set(body.answers) - asked)
    if unknown:
        raise RequestValidationFailed.for_field(["answers", unknown[0]], "not one of the questions asked")
    decision = Decision(allow=True, updated_input={**original, "answers": body.answers})
    await approvals.answer(session_id, body.question_id, "question", decision)
    return AnswerResult(session_id=session_id, request_id=body.question_id, decision="answered")


async def control_run(
    state: AppState, db: AsyncSession, principal: Principal, session_id: str, body: ControlRequest
) -> ControlResult:
    await _owned(db, session_id, principal.key_id)
    run_id = await state.run_manager.running_run(session_id)
    if run_id is None:
        raise NoActiveRun(details={"session_id": session_id})
    if not await state.run_manager.control_session(session_id, permission_mode=body.permission_mode, model=body.model):
        raise ServiceUnavailable("The instance running this session did not acknowledge the change.")
    return ControlResult(session_id=session_id, run_id=run_id, permission_mode=body.permission_mode, model=body.model)


@router.post("/interrupt", response_model=InterruptResult, responses=_RUNNING, summary="Stop the running prompt")
async def interrupt_route(session_id: str, principal: CurrentKey, state: State, db: DbSession) -> InterruptResult:
    return await interrupt_run(state, db, principal, session_id)


@router.post(
    "/permissions/{request_id}",
    response_model=AnswerResult,
    responses={404: {"description": "APPROVAL_NOT_FOUND"}, **_RUNNING},
    summary="Allow or deny a tool the agent asked to use",
)
async def permission_route(
    session_id: str, request_id: str, body: PermissionAnswer, principal: CurrentKey, state: State, db: DbSession
) -> AnswerResult:
    return await answer_permission(state, db, principal, session_id, request_id, body)


@router.post(
    "/answer",
    response_model=AnswerResult,
    responses={404: {"description": "APPROVAL_NOT_FOUND"}, **_RUNNING},
    summary="Answer the agent's question (AskUserQuestion)",
)
async def answer_route(
    session_id: str, body: QuestionAnswer, principal: CurrentKey, state: State, db: DbSession
) -> AnswerResult:
    return await answer_question(state, db, principal, session_id, body)


@router.post(
    "/control",
    response_model=ControlResult,
    responses=_RUNNING,
    summary="Change the permission mode or the model of the running prompt",
)
async def control_route(
    session_id: str, body: ControlRequest, principal: CurrentKey, state: State, db: DbSession
) -> ControlResult:
    return await control_run(state, db, principal, session_id, body)


class HookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    run_id: str
    event: str
    tool_name: str | None
    url_host: str
    webhook_id: str
    ok: bool
    status: int | None
    attempts: int
    duration_ms: float
    decision: str | None
    error: str | None
    created_at: datetime


class HookDeliveryList(BaseModel):
    data: list[HookDeliveryRead]


@router.get("/hooks", response_model=HookDeliveryList, summary="The session's webhook deliveries, newest first")
async def hook_deliveries(
    session_id: str,
    principal: CurrentKey,
    db: DbSession,
    limit: int = Query(default=100, ge=1, le=1000),
) -> HookDeliveryList:
    await _owned(db, session_id, principal.key_id)
    rows = await RunRepository(db).hook_deliveries(session_id, limit=limit)
    return HookDeliveryList(data=[HookDeliveryRead.model_validate(r) for r in rows])


class McpStatus(BaseModel):
    session_id: str
    mcp_servers: list[dict[str, Any]] = Field(description="As the agent reports them: name, status, tools…")


@router.get(
    "/mcp",
    response_model=McpStatus,
    responses={409: {"description": "NO_LIVE_AGENT: no running or warm agent for this session."}},
    summary="The live MCP server status of the session's running or warm agent",
)
async def mcp_status(session_id: str, principal: CurrentKey, state: State, db: DbSession) -> McpStatus:
    await _owned(db, session_id, principal.key_id)
    status = await state.run_manager.mcp_status(session_id)
    if status is None:
        raise NoLiveAgent(details={"session_id": session_id})
    servers = status.get("mcpServers") or status.get("mcp_servers") or []
    return McpStatus(session_id=session_id, mcp_servers=list(servers))
