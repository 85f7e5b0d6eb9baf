"""What a run writes to SQL: the session and run rows when it is accepted, when it starts after waiting in the
queue, and when it ends (status, final result, totals added to the session)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.agent.runner import RunOutcome
from claude_agent_api.agent.translate import Event
from claude_agent_api.auth.service import Principal
from claude_agent_api.config import Settings
from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.models import AgentSession, Run, RunStatus, SessionStatus
from claude_agent_api.models.base import utcnow
from claude_agent_api.runs.outcome import run_totals
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.runs.schemas import PER_TURN_FIELDS, PromptRequest
from claude_agent_api.sessions.errors import SessionNotFound
from claude_agent_api.sessions.expiry import ensure_not_expired
from claude_agent_api.sessions.repository import SessionRepository


def prompt_preview(prompt: str | list[dict[str, Any]]) -> str:
    if isinstance(prompt, str):
        return prompt[:200]
    texts = [b.get("text", "") for b in prompt if b.get("type") == "text"]
    return " ".join(texts)[:200] or "[image]"


def options_snapshot(request: PromptRequest) -> dict[str, Any]:
    """What the rows keep of a request: no prompt, and names only where values may be secret."""
    dump = request.model_dump(
        mode="json",
        exclude=set(PER_TURN_FIELDS),
        exclude_none=True,
    )
    for field in ("env", "mcp_servers"):
        if field in dump:
            dump[field] = sorted(dump[field])
    return dump


async def existing_session(
    db: AsyncSession, principal: Principal, session_id: str | None, cwd: str | None, settings: Settings
) -> AgentSession | None:
    if session_id is None:
        return None
    existing = await SessionRepository(db).get_owned(session_id, principal.key_id)
    if existing is None:
        raise SessionNotFound()
    ensure_not_expired(existing, settings)
    if cwd is not None and cwd.strip("/") != existing.cwd:
        raise RequestValidationFailed.for_field("cwd", "a session keeps the working directory it started in")
    return existing


async def record_start(
    db: AsyncSession,
    principal: Principal,
    request: PromptRequest,
    run_id: str,
    session_id: str,
    existing: AgentSession | None,
    cwd: str,
    instance_id: str,
    *,
    queued: bool,
) -> None:
    now = utcnow()
    if existing is None:
        await SessionRepository(db).add(
            AgentSession(
                id=session_id,
                owner_key_id=principal.key_id,
                status=SessionStatus.RUNNING.value,
                model=request.model,
                cwd=cwd,
                options=options_snapshot(request),
                last_activity_at=now,
            )
        )
    else:
        if not queued:
            existing.status = SessionStatus.RUNNING.value
        existing.last_activity_at = now
        if request.model:
            existing.model = request.model
    await RunRepository(db).add(
        Run(
            id=run_id,
            session_id=session_id,
            owner_key_id=principal.key_id,
            status=(RunStatus.QUEUED if queued else RunStatus.RUNNING).value,
            prompt_preview=prompt_preview(request.prompt_input()),
            options=options_snapshot(request),
            instance_id=instance_id,
            started_at=None if queued else now,
        )
    )


async def record_running(factory: SessionFactory, run_id: str, session_id: str) -> None:
    async with unit_of_work(factory) as db:
        run = await RunRepository(db).get(run_id)
        if run is not None:
            run.status = RunStatus.RUNNING.value
            run.started_at = utcnow()
        await SessionRepository(db).set_status(session_id, SessionStatus.RUNNING)


async def record_finish(
    factory: SessionFactory,
    run_id: str,
    session_id: str,
    status: RunStatus,
    outcome: RunOutcome,
    error: Event | None,
    events: list[tuple[int, Event]],
) -> None:
    """Save the outcome, totals and every event of the run (``done`` included) in one transaction."""
    totals = run_totals(outcome)
    last = outcome.results[-1] if outcome.results else None
    async with unit_of_work(factory) as db:
        run = await RunRepository(db).get(run_id)
        session = await SessionRepository(db).get(session_id)
        if run is None or session is None:
            return  # deleted while running
        run.status = status.value
        run.stop_reason = last["stop_reason"] if last else None
        run.result = last
        run.error = {k: error[k] for k in ("code", "message") if k in error} if error else None
        run.num_turns = totals.num_turns
        run.total_cost_usd = totals.cost
        run.input_tokens = totals.input_tokens
        run.output_tokens = totals.output_tokens
        run.last_event_seq = events[-1][0] if events else 0
        run.finished_at = utcnow()
        if session.status not in (SessionStatus.DELETED.value, SessionStatus.EXPIRED.value):
            failed_to_start = status is RunStatus.FAILED and last is None
            session.status = (SessionStatus.FAILED if failed_to_start else SessionStatus.IDLE).value
        session.num_runs += 1
        session.num_turns += totals.num_turns
        session.total_cost_usd += totals.cost
        session.input_tokens += totals.input_tokens
        session.output_tokens += totals.output_tokens
        session.cache_read_input_tokens += totals.cache_read_input_tokens
        session.cache_creation_input_tokens += totals.cache_creation_input_tokens
        session.last_run_id = run_id
        session.last_activity_at = utcnow()
        await RunRepository(db).add_events(run_id, events)
