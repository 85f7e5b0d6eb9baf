"""The run manager: starts runs as background tasks, writes their events to the run's log, keeps one run per
session, and records the outcome in SQL.

Everything that can refuse a run happens in :meth:`RunManager.start`, before a response starts: ownership,
capacity, the session lock (TTL + owner token, renewed while the run lives), path and option validation, and
the session/run rows. The run then executes in a task of this instance; its events go to the coordination
backend's log ``run:<id>`` (memory or Redis Streams), from which any reader streams them with sequence numbers.
The outcome (status, totals, the final result) is committed to SQL *before* ``done`` is appended, so a client
that has seen ``done`` can read the final state from any instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.agent.options import RunContext, build_options, validate_paths
from claude_agent_api.agent.runner import AgentOptions, AgentRunner, Prompt, RunOutcome, base_env
from claude_agent_api.agent.translate import Event
from claude_agent_api.auth.service import Principal
from claude_agent_api.config import Settings
from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.coordination import CoordinationBackend, LogEntry
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.kit.metrics import Metrics
from claude_agent_api.kit.workspace import CliDirs, key_workspace
from claude_agent_api.models import AgentSession, Run, RunStatus, SessionStatus
from claude_agent_api.models.base import utcnow
from claude_agent_api.runs.errors import CapacityExceeded, KeyConcurrencyExceeded
from claude_agent_api.runs.outcome import final_status, run_totals
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.runs.schemas import QueryRequest
from claude_agent_api.sessions.errors import SessionLocked, SessionNotFound
from claude_agent_api.sessions.repository import SessionRepository

log = structlog.get_logger("claude_agent_api.runs")


@dataclass(frozen=True)
class RunHandle:
    run_id: str
    session_id: str
    created_session: bool

    @property
    def log(self) -> str:
        return f"run:{self.run_id}"


def _prompt_preview(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt[:200]
    texts = [b.get("text", "") for b in prompt if b.get("type") == "text"]
    return " ".join(texts)[:200] or "[image]"


def _options_snapshot(request: QueryRequest) -> dict[str, Any]:
    """What the session row keeps of the request: no prompt, and names only where values may be secret."""
    dump = request.model_dump(mode="json", exclude={"prompt", "session_id"}, exclude_none=True)
    if "env" in dump:
        dump["env"] = sorted(dump["env"])
    if "mcp_servers" in dump:
        dump["mcp_servers"] = sorted(dump["mcp_servers"])
    return dump


class RunManager:
    def __init__(
        self,
        settings: Settings,
        session_factory: SessionFactory,
        coordination: CoordinationBackend,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.coordination = coordination
        self.metrics = metrics
        self.runner = AgentRunner(settings)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._per_key: Counter[str] = Counter()

    # -- starting -------------------------------------------------------------------------------------------

    async def start(self, principal: Principal, request: QueryRequest, db: AsyncSession) -> RunHandle:
        """Validate, lock and record a run in the request's transaction ``db``; raise an :class:`AppError`
        (nothing started) otherwise. The run starts executing once that transaction commits, and never if it
        rolls back (the lock is then released)."""
        settings = self.settings
        if len(self._tasks) >= settings.max_runs_per_instance:
            raise CapacityExceeded(headers={"Retry-After": "5"})
        if self._per_key[principal.key_id] >= settings.max_runs_per_key:
            raise KeyConcurrencyExceeded(headers={"Retry-After": "5"})
        workspace = key_workspace(settings.effective_workspace_root, principal.key_id)
        workspace.mkdir(parents=True, exist_ok=True)
        validate_paths(request, workspace)

        existing = await self._existing_session(db, principal, request)
        session_id = existing.id if existing else str(uuid.uuid4())
        options = build_options(request, self._context(principal, workspace, session_id, existing))
        run_id = str(uuid.uuid4())
        await self._lock(session_id, run_id)
        try:
            cwd = _relative(str(options.cwd), workspace) if options.cwd else ""
            await self._record_start(db, principal, request, run_id, session_id, existing, cwd)
        except BaseException:
            await self.coordination.release_lock(f"session:{session_id}", run_id)
            raise

        handle = RunHandle(run_id=run_id, session_id=session_id, created_session=existing is None)
        self._per_key[principal.key_id] += 1
        self.metrics.active_runs.inc()
        committed = asyncio.Event()
        task = asyncio.create_task(
            self._execute(handle, principal, options, request, workspace, committed), name=f"run-{run_id}"
        )
        self._tasks[run_id] = task
        event.listen(db.sync_session, "after_commit", lambda _s: committed.set(), once=True)
        event.listen(db.sync_session, "after_rollback", lambda _s: committed.is_set() or task.cancel(), once=True)
        log.info("run.accepted", run_id=run_id, session_id=session_id, resumed=existing is not None)
        return handle

    @staticmethod
    async def _existing_session(db: AsyncSession, principal: Principal, request: QueryRequest) -> AgentSession | None:
        if request.session_id is None:
            return None
        existing = await SessionRepository(db).get_owned(request.session_id, principal.key_id)
        if existing is None:
            raise SessionNotFound()
        if request.cwd is not None and request.cwd.strip("/") != existing.cwd:
            raise RequestValidationFailed.for_field("cwd", "a session keeps the working directory it started in")
        return existing

    def _context(
        self, principal: Principal, workspace: Path, session_id: str, existing: AgentSession | None
    ) -> RunContext:
        settings = self.settings
        dirs = CliDirs.for_key(settings.data_dir, principal.key_id)
        return RunContext(
            workspace=workspace,
            cli_dirs=dirs,
            session_id=session_id,
            resume=existing is not None,
            base_env=base_env(settings, dirs),
            env_allowlist=frozenset(settings.agent_env_allowlist),
            mcp_var_allowlist=frozenset(settings.mcp_env_allowlist),
            mcp_vars={k: v for k in settings.mcp_env_allowlist if (v := os.environ.get(k)) is not None},
            stderr=None,
            default_cwd=existing.cwd if existing else f"sessions/{session_id}",
        )

    async def _lock(self, session_id: str, run_id: str) -> None:
        """One run per session: the lock's token is the run id, so a refusal can name the running run."""
        name = f"session:{session_id}"
        if await self.coordination.acquire_lock(name, self.settings.session_lock_ttl, run_id) is None:
            owner = await self.coordination.lock_owner(name)
            ttl = await self.coordination.lock_ttl(name)
            raise SessionLocked(
                details={"session_id": session_id, "run_id": owner},
                headers={"Retry-After": str(max(1, int(ttl or 1)))},
            )

    async def _record_start(
        self,
        db: AsyncSession,
        principal: Principal,
        request: QueryRequest,
        run_id: str,
        session_id: str,
        existing: AgentSession | None,
        cwd_rel: str,
    ) -> None:
        now = utcnow()
        if existing is None:
            await SessionRepository(db).add(
                AgentSession(
                    id=session_id,
                    owner_key_id=principal.key_id,
                    status=SessionStatus.RUNNING.value,
                    model=request.model,
                    cwd=cwd_rel,
                    options=_options_snapshot(request),
                    last_activity_at=now,
                )
            )
        else:
            existing.status = SessionStatus.RUNNING.value
            existing.last_activity_at = now
            if request.model:
                existing.model = request.model
        await RunRepository(db).add(
            Run(
                id=run_id,
                session_id=session_id,
                owner_key_id=principal.key_id,
                status=RunStatus.RUNNING.value,
                prompt_preview=_prompt_preview(request.prompt_input()),
                options=_options_snapshot(request),
                instance_id=self.settings.instance_id,
                started_at=now,
            )
        )

    # -- executing ------------------------------------------------------------------------------------------

    async def _emit(self, handle: RunHandle, event: Event) -> int:
        event = {**event, "run_id": handle.run_id, "session_id": handle.session_id}
        return await self.coordination.append(handle.log, event, ttl=self.settings.event_retention_seconds)

    async def _keep_lock(self, handle: RunHandle) -> None:
        ttl = self.settings.session_lock_ttl
        while True:
            await asyncio.sleep(ttl / 3)
            with contextlib.suppress(Exception):
                await self.coordination.refresh_lock(f"session:{handle.session_id}", handle.run_id, ttl)

    async def _execute(
        self,
        handle: RunHandle,
        principal: Principal,
        options: AgentOptions,
        request: QueryRequest,
        workspace: Path,
        committed: asyncio.Event,
    ) -> None:
        try:
            await committed.wait()
        except asyncio.CancelledError:  # the request's transaction rolled back: the run never existed
            await self._forget(handle, principal)
            return
        keeper = asyncio.create_task(self._keep_lock(handle))
        outcome = RunOutcome()
        cancelled = False
        last_seq = 0

        async def emit(event: Event) -> None:
            nonlocal last_seq
            last_seq = await self._emit(handle, event)

        try:
            outcome = await self.runner.run(
                options, request.prompt_input(), emit, session_id=handle.session_id, workspace=workspace
            )
        except asyncio.CancelledError:
            cancelled = True
        except Exception as exc:  # a bug or a dead dependency: the run fails, the server goes on
            log.exception("run.crashed", run_id=handle.run_id)
            outcome.error = {
                "type": "error",
                "code": "INTERNAL_ERROR",
                "message": f"The run failed ({type(exc).__name__}).",
            }
        finally:
            keeper.cancel()
        await asyncio.shield(self._finish(handle, principal, request, outcome, cancelled, emit))

    async def _finish(
        self,
        handle: RunHandle,
        principal: Principal,
        request: QueryRequest,
        outcome: RunOutcome,
        cancelled: bool,
        emit: Any,
    ) -> None:
        status, extra_error = final_status(outcome, cancelled=cancelled)
        try:
            if extra_error is not None:
                await emit(extra_error)
            elif outcome.error is not None:
                await emit(outcome.error)
            await self._record_finish(handle, status, outcome, extra_error or outcome.error)
        except Exception:
            log.exception("run.finish_failed", run_id=handle.run_id)
        finally:
            with contextlib.suppress(Exception):
                await self.coordination.release_lock(f"session:{handle.session_id}", handle.run_id)
            with contextlib.suppress(Exception):
                await emit({"type": "done", "status": status.value})
            await self._forget(handle, principal)
            self.metrics.runs.labels(status.value).inc()
            log.info("run.finished", run_id=handle.run_id, status=status.value)

    async def _forget(self, handle: RunHandle, principal: Principal) -> None:
        with contextlib.suppress(Exception):
            await self.coordination.release_lock(f"session:{handle.session_id}", handle.run_id)
        self._tasks.pop(handle.run_id, None)
        self._per_key[principal.key_id] -= 1
        if self._per_key[principal.key_id] <= 0:
            del self._per_key[principal.key_id]
        self.metrics.active_runs.dec()

    async def _record_finish(
        self, handle: RunHandle, status: RunStatus, outcome: RunOutcome, error: Event | None
    ) -> None:
        totals = run_totals(outcome)
        last = outcome.results[-1] if outcome.results else None
        async with unit_of_work(self.session_factory) as db:
            run = await RunRepository(db).get(handle.run_id)
            session = await SessionRepository(db).get(handle.session_id)
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
            # The run's own task is the log's only writer: `done`, appended next, takes the following number.
            run.last_event_seq = await self.coordination.last_seq(handle.log) + 1
            run.finished_at = utcnow()
            session.status = (
                SessionStatus.FAILED if status is RunStatus.FAILED and not last else SessionStatus.IDLE
            ).value
            session.num_runs += 1
            session.num_turns += totals.num_turns
            session.total_cost_usd += totals.cost
            session.input_tokens += totals.input_tokens
            session.output_tokens += totals.output_tokens
            session.cache_read_input_tokens += totals.cache_read_input_tokens
            session.cache_creation_input_tokens += totals.cache_creation_input_tokens
            session.last_run_id = handle.run_id
            session.last_activity_at = utcnow()

    # -- reading and stopping -------------------------------------------------------------------------------

    async def events(self, handle: RunHandle, after: int = 0) -> AsyncIterator[LogEntry]:
        """The run's events after ``after``, live, until ``done``."""
        while True:
            entries = await self.coordination.tail(handle.log, after, timeout=30.0)
            for entry in entries:
                yield entry
                after = entry.seq
                if entry.data.get("type") == "done":
                    return

    def cancel(self, run_id: str) -> bool:
        task = self._tasks.get(run_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _relative(path: str, workspace: Path) -> str:
    return str(Path(path).resolve().relative_to(workspace.resolve()))
