"""The run manager: starts runs as background tasks, writes their events to the run's log, keeps one run per
session, routes interrupts to the instance that holds a run, and records outcomes in SQL.

Everything that can refuse a run happens in :meth:`RunManager.start`, before a response starts: ownership,
capacity, path and option validation, the session lock (TTL + owner token = the run id, renewed while the run
lives) or the multitask policy, and the session/run rows in the request's transaction. The run executes once
that transaction commits, in a task of this instance; its events go to the coordination backend's log
``run:<id>`` (memory or Redis Streams), from which any reader streams them with sequence numbers. The outcome
(status, totals, the final result) is committed to SQL *before* ``done`` is appended, so a client that has seen
``done`` can read the final state from any instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette.sse import AppStatus

from claude_agent_api.agent.options import build_options, validate_paths
from claude_agent_api.agent.runner import AgentOptions, AgentRunner, RunOutcome, TurnSpec
from claude_agent_api.agent.store import SqlSessionStore
from claude_agent_api.agent.translate import Event
from claude_agent_api.auth.service import ApiKeyService, Principal
from claude_agent_api.config import Settings
from claude_agent_api.kit.coordination import CoordinationBackend, LogEntry
from claude_agent_api.kit.database import SessionFactory
from claude_agent_api.kit.metrics import Metrics
from claude_agent_api.kit.workspace import forget_local_files, key_workspace
from claude_agent_api.models import AgentSession, RunStatus
from claude_agent_api.runs.approvals import Approvals
from claude_agent_api.runs.context import run_context
from claude_agent_api.runs.control import ControlChannel
from claude_agent_api.runs.errors import CapacityExceeded, KeyConcurrencyExceeded, ShuttingDown
from claude_agent_api.runs.hook_relay import HookRelay
from claude_agent_api.runs.outcome import final_status
from claude_agent_api.runs.recording import (
    existing_session,
    record_finish,
    record_running,
    record_start,
)
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.runs.schemas import PER_TURN_FIELDS, PromptRequest
from claude_agent_api.sessions.errors import SessionLocked
from claude_agent_api.webhooks.schemas import WebhookSpec
from claude_agent_api.webhooks.ssrf import require_safe_url

log = structlog.get_logger("claude_agent_api.runs")
INTERRUPT_GRACE = 5.0  # seconds a run gets to stop after the SDK's interrupt before its task is cancelled


@dataclass(frozen=True)
class RunHandle:
    run_id: str
    session_id: str

    @property
    def log(self) -> str:
        return f"run:{self.run_id}"


@dataclass
class _Job:
    handle: RunHandle
    principal: Principal
    options: AgentOptions
    fingerprint: str
    request: PromptRequest
    workspace: Path
    queued: bool
    committed: asyncio.Event
    webhook_secret: str | None


def lock_name(session_id: str) -> str:
    return f"session:{session_id}"


def fingerprint(request: PromptRequest, cwd: str) -> str:
    """What must be equal for a warm agent to serve the next turn: every process-level option with its values
    (env and MCP settings included), minus what a running process can change (model, permission mode), with the
    cwd compared resolved."""
    changeable = {"model", "permission_mode", "cwd"}
    snapshot = request.model_dump(mode="json", exclude=set(PER_TURN_FIELDS | changeable), exclude_none=True)
    return hashlib.sha256(json.dumps([snapshot, cwd], sort_keys=True).encode()).hexdigest()


def _relative(cwd: str | Path | None, workspace: Path) -> str:
    return str(Path(cwd).resolve().relative_to(workspace.resolve())) if cwd else ""


class RunManager:
    def __init__(
        self, settings: Settings, session_factory: SessionFactory, coordination: CoordinationBackend, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.coordination = coordination
        self.metrics = metrics
        self.store = SqlSessionStore(session_factory)
        self.runner = AgentRunner(settings, metrics, self.store)
        self.control = ControlChannel(coordination, self._on_control)
        self.approvals = Approvals(coordination, self.control.publish, session_factory)
        self.hooks = HookRelay(settings, session_factory)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sessions: dict[str, str] = {}  # session id -> run id, for runs held by this instance
        self._per_key: Counter[str] = Counter()
        self.draining = False
        self.drained = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    # -- starting -------------------------------------------------------------------------------------------

    async def start(
        self, principal: Principal, request: PromptRequest, db: AsyncSession, *, session_id: str | None = None
    ) -> RunHandle:
        """Validate, lock and record a run in the request's transaction ``db``; raise an :class:`AppError`
        (nothing started) otherwise. The run executes once that transaction commits, never if it rolls back."""
        settings = self.settings
        if self.draining:
            raise ShuttingDown(headers={"Retry-After": "2"})
        if len(self._tasks) >= settings.max_runs_per_instance:
            raise CapacityExceeded(headers={"Retry-After": "5"})
        if self._per_key[principal.key_id] >= settings.max_runs_per_key:
            raise KeyConcurrencyExceeded(headers={"Retry-After": "5"})
        workspace = key_workspace(settings.effective_workspace_root, principal.key_id)
        workspace.mkdir(parents=True, exist_ok=True)
        validate_paths(request, workspace)
        if not request.webhooks and (defaults := await ApiKeyService(db).default_webhooks(principal.key_id)):
            request = request.model_copy(update={"webhooks": [WebhookSpec.model_validate(h) for h in defaults]})
        for index, hook in enumerate(request.webhooks):
            require_safe_url(hook.url, allow=settings.webhook_allow_private, field=["webhooks", index, "url"])

        existing = await existing_session(db, principal, session_id, request.cwd, settings)
        if existing is not None and existing.model and request.model is None:
            request = request.model_copy(update={"model": existing.model})  # a session keeps its model
        sid = existing.id if existing else str(uuid.uuid4())
        options = build_options(request, run_context(settings, principal, workspace, sid, existing))
        servers = options.mcp_servers if isinstance(options.mcp_servers, dict) else {}
        for name, server in servers.items():
            if server.get("type") in ("sse", "http") and isinstance(url := server.get("url"), str):
                require_safe_url(url, allow=settings.webhook_allow_private, field=["mcp_servers", name, "url"])
        cwd = _relative(options.cwd, workspace)
        run_id = str(uuid.uuid4())
        queued = not await self._lock_or_apply_policy(sid, run_id, request)
        try:
            await record_start(db, principal, request, run_id, sid, existing, cwd, settings.instance_id, queued=queued)
        except BaseException:
            await self.coordination.release_lock(lock_name(sid), run_id)
            raise

        job = _Job(
            handle=RunHandle(run_id=run_id, session_id=sid),
            principal=principal,
            options=options,
            fingerprint=fingerprint(request, cwd),
            request=request,
            workspace=workspace,
            queued=queued,
            committed=asyncio.Event(),
            webhook_secret=await ApiKeyService(db).webhook_secret(principal.key_id) if request.webhooks else None,
        )
        self._per_key[principal.key_id] += 1
        self.metrics.active_runs.inc()
        task = asyncio.create_task(self._execute(job), name=f"run-{run_id}")
        self._tasks[run_id] = task
        event.listen(db.sync_session, "after_commit", lambda _s: job.committed.set(), once=True)
        event.listen(db.sync_session, "after_rollback", lambda _s: job.committed.is_set() or task.cancel(), once=True)
        log.info("run.accepted", run_id=run_id, session_id=sid, resumed=existing is not None, queued=queued)
        return job.handle

    async def _lock_or_apply_policy(self, session_id: str, run_id: str, request: PromptRequest) -> bool:
        """Take the session's lock (True), or queue the run (False), or raise ``SESSION_LOCKED``."""
        name = lock_name(session_id)
        if await self.coordination.acquire_lock(name, self.settings.session_lock_ttl, run_id) is not None:
            return True
        if request.multitask == "enqueue":
            return False
        running = await self.coordination.lock_owner(name)
        if request.multitask == "interrupt" and running:
            await self.interrupt_session(session_id)
            if await self.coordination.acquire_lock(name, self.settings.session_lock_ttl, run_id) is not None:
                return True
        ttl = await self.coordination.lock_ttl(name)
        raise SessionLocked(
            details={"session_id": session_id, "run_id": running},
            headers={"Retry-After": str(max(1, math.ceil(ttl or 1)))},
        )

    # -- executing ------------------------------------------------------------------------------------------

    @staticmethod
    def _stamp(handle: RunHandle, item: Event) -> Event:
        return {**item, "run_id": handle.run_id, "session_id": handle.session_id}

    async def _emit(self, handle: RunHandle, item: Event) -> int:
        return await self.coordination.append(
            handle.log, self._stamp(handle, item), ttl=self.settings.event_retention_seconds
        )

    async def _keep_lock(self, handle: RunHandle) -> None:
        ttl = self.settings.session_lock_ttl
        while True:
            await asyncio.sleep(ttl / 3)
            with contextlib.suppress(Exception):
                await self.coordination.refresh_lock(lock_name(handle.session_id), handle.run_id, ttl)

    async def _wait_for_lock(self, handle: RunHandle) -> None:
        """An enqueued run: wait until the running one releases the session (or its lock expires), following
        the running run's event log so the wait ends as soon as that run does."""
        name = lock_name(handle.session_id)
        while await self.coordination.acquire_lock(name, self.settings.session_lock_ttl, handle.run_id) is None:
            running = await self.coordination.lock_owner(name)
            if running is not None:
                log_name = f"run:{running}"
                await self.coordination.tail(log_name, await self.coordination.last_seq(log_name), timeout=1.0)
        await record_running(self.session_factory, handle.run_id, handle.session_id)

    async def _execute(self, job: _Job) -> None:
        handle = job.handle
        try:
            await job.committed.wait()
            if job.queued:
                await self._wait_for_lock(handle)
        except asyncio.CancelledError:  # rolled back before it began, or cancelled while queued
            await self._finish(job, RunOutcome(), cancelled=True, started=False)
            return
        self._sessions[handle.session_id] = handle.run_id
        keeper = asyncio.create_task(self._keep_lock(handle))
        outcome, cancelled = RunOutcome(), False
        try:
            async with self.session_factory() as db:
                session = await db.get(AgentSession, handle.session_id)
                last_run_id = session.last_run_id if session else None

            async def emit(item: Event) -> None:
                await self._emit(handle, item)

            spec = TurnSpec(
                session_id=handle.session_id,
                run_id=handle.run_id,
                options=job.options,
                fingerprint=job.fingerprint,
                prompt=job.request.prompt_input(),
                workspace=job.workspace,
                last_run_id=last_run_id,
                webhooks=[(list(h.events), h.matcher, h.timeout_seconds) for h in job.request.webhooks],
                relay=self.hooks.relay(
                    run_id=handle.run_id,
                    session_id=handle.session_id,
                    specs=job.request.webhooks,
                    secret=job.webhook_secret or "",
                    emit=emit,
                    stream_events=job.request.include_hook_events,
                )
                if job.request.webhooks
                else None,
                approver=self.approvals.approver(
                    handle.run_id,
                    handle.session_id,
                    emit,
                    job.request.approval_timeout_seconds or self.settings.approval_timeout_seconds,
                ),
            )
            outcome = await self.runner.run(spec, emit)
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
        await asyncio.shield(self._finish(job, outcome, cancelled=cancelled, started=True))

    async def _finish(self, job: _Job, outcome: RunOutcome, *, cancelled: bool, started: bool) -> None:
        handle = job.handle
        status, error = final_status(outcome, cancelled=cancelled)
        error = error or outcome.error
        try:
            if error is not None:
                await self._emit(handle, error)
            if job.committed.is_set():
                logged = [(e.seq, e.data) for e in await self.coordination.read_after(handle.log, 0)]
                done_seq = (logged[-1][0] if logged else 0) + 1  # this task is the log's only writer
                logged.append((done_seq, self._stamp(handle, {"type": "done", "status": status.value})))
                await record_finish(
                    self.session_factory, handle.run_id, handle.session_id, status, outcome, error, logged
                )
        except Exception:
            log.exception("run.finish_failed", run_id=handle.run_id)
        finally:
            with contextlib.suppress(Exception):
                await self.coordination.release_lock(lock_name(handle.session_id), handle.run_id)
            if job.committed.is_set():
                with contextlib.suppress(Exception):
                    await self._emit(handle, {"type": "done", "status": status.value})
            self._tasks.pop(handle.run_id, None)
            if self._sessions.get(handle.session_id) == handle.run_id:
                del self._sessions[handle.session_id]
            self._per_key[job.principal.key_id] -= 1
            if self._per_key[job.principal.key_id] <= 0:
                del self._per_key[job.principal.key_id]
            self.metrics.active_runs.dec()
            self.metrics.runs.labels(status.value).inc()
            log.info("run.finished", run_id=handle.run_id, status=status.value, started=started)

    # -- reading ----------------------------------------------------------------------------------------------

    async def events(self, handle: RunHandle, after: int = 0) -> AsyncGenerator[LogEntry]:
        """The run's events after ``after``, live, until ``done``: from the coordination log while it is kept,
        from SQL once the run has ended and its log has expired."""
        if await self.coordination.last_seq(handle.log) == 0:
            async with self.session_factory() as db:
                repo = RunRepository(db)
                run = await repo.get(handle.run_id)
                if run is not None and RunStatus(run.status).is_final:
                    for seq, data in await repo.events_after(handle.run_id, after):
                        yield LogEntry(seq=seq, data=data)
                    return
        while True:
            # A bounded batch per read: a reader that falls behind never pulls a whole backlog into memory.
            entries = await self.coordination.tail(handle.log, after, timeout=30.0, limit=200)
            for entry in entries:
                yield entry
                after = entry.seq
                if entry.data.get("type") == "done":
                    return

    # -- stopping -------------------------------------------------------------------------------------------

    def cancel(self, run_id: str) -> bool:
        """End a run of this instance now (its agent process is closed)."""
        task = self._tasks.get(run_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def _interrupt_local(self, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is None:
            return
        session_id = next((s for s, r in self._sessions.items() if r == run_id), None)
        if session_id is None or not await self.runner.interrupt(session_id):
            task.cancel()  # queued, or not yet talking to an agent
            return
        done, _ = await asyncio.wait({task}, timeout=INTERRUPT_GRACE)
        if not done:
            task.cancel()

    async def running_run(self, session_id: str) -> str | None:
        """The id of the session's running run, on any instance (the lock's owner token)."""
        return await self.coordination.lock_owner(lock_name(session_id))

    async def interrupt_session(self, session_id: str, *, wait: float = 15.0) -> bool:
        """Stop the session's running run, wherever it runs; True once its lock is released."""
        name = lock_name(session_id)
        run_id = await self.coordination.lock_owner(name)
        if run_id is None:
            return True
        await self.control.publish({"action": "interrupt", "run_id": run_id})
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if await self.coordination.lock_owner(name) != run_id:
                return True
            await asyncio.sleep(0.05)
        return False

    async def release_warm(self, session_id: str, *, forget_files_of: str | None = None) -> None:
        """Close the session's warm agent on whichever instance keeps one; with ``forget_files_of`` (the owner
        key), every instance also removes its local CLI copies of the session (transcript, file backups)."""
        await self.control.publish({"action": "release", "session_id": session_id, "key_id": forget_files_of})

    async def _on_control(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        if action == "interrupt" and isinstance(run_id := message.get("run_id"), str) and run_id in self._tasks:
            log.info("run.interrupting", run_id=run_id)
            await self._interrupt_local(run_id)
        elif action == "release" and isinstance(session_id := message.get("session_id"), str):
            await self.runner.release(session_id)
            if isinstance(key_id := message.get("key_id"), str):
                await asyncio.to_thread(forget_local_files, self.settings.data_dir, key_id, session_id)
        elif action == "answer":
            self.approvals.resolve(message)
        elif action == "mcp_status" and isinstance(session_id := message.get("session_id"), str):
            if (status := await self.runner.mcp_status(session_id)) is not None:
                await self.control.reply(message, status)
        elif action == "control" and isinstance(session_id := message.get("session_id"), str):
            mode, model = message.get("permission_mode"), message.get("model")
            if await self.runner.control(session_id, permission_mode=mode, model=model):
                ack = {"permission_mode": mode, "model": model, "instance_id": self.settings.instance_id}
                await self.control.reply(message, ack)

    async def mcp_status(self, session_id: str) -> dict[str, Any] | None:
        """The live MCP server status of the session's running or warm agent, on whichever instance has one."""
        return await self.control.request({"action": "mcp_status", "session_id": session_id}, wait=3)

    async def control_session(self, session_id: str, *, permission_mode: str | None, model: str | None) -> bool:
        """Change the running session's permission mode and/or model wherever it runs; True once applied."""
        message = {"action": "control", "session_id": session_id, "permission_mode": permission_mode, "model": model}
        return await self.control.request(message, wait=5) is not None

    # -- shutting down --------------------------------------------------------------------------------------

    async def startup(self) -> None:
        await self.control.start()
        self._watcher = asyncio.create_task(self._watch_for_exit(), name="drain-watcher")

    async def _watch_for_exit(self) -> None:
        """uvicorn's SIGTERM handling (as seen by sse-starlette's ``AppStatus``) starts the drain at once, while
        streams are still connected, so their clients get each run's final events."""
        while not AppStatus.should_exit:  # noqa: ASYNC110 - a flag set from a signal handler, with no event to await
            await asyncio.sleep(0.2)
        await self.drain()

    async def drain(self) -> None:
        """Refuse new runs; let running ones finish for ``drain_seconds``; interrupt the rest (their state is
        saved and their streams get ``done``); then mark the instance drained."""
        if self.draining:
            await self.drained.wait()
            return
        self.draining = True
        log.info("runs.draining", running=len(self._tasks), seconds=self.settings.drain_seconds)
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=self.settings.drain_seconds)
        leftover = list(self._tasks)
        if leftover:
            log.info("runs.interrupting_for_shutdown", runs=len(leftover))
            await asyncio.gather(*(self._interrupt_local(run_id) for run_id in leftover), return_exceptions=True)
        self.drained.set()

    async def shutdown(self) -> None:
        await self.drain()
        if self._watcher is not None:
            self._watcher.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.runner.close()
        await self.control.stop()
        await self.hooks.aclose()
