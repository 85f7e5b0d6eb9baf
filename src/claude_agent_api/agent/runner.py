"""The agent runner: runs a turn of a session on a warm agent when one fits, on a new process otherwise.

Warm agents stay connected after a turn for ``warm_idle_seconds``, at most ``warm_pool_size`` of them (least
recently used first out). A warm agent is reused only when

- the turn's process-level options are the same (its *fingerprint*: cwd, tools, MCP servers, system prompt…;
  a different model or permission mode is applied to the running process instead), and
- the session's last run was this agent's own: if another instance answered in between, this process's memory
  of the conversation is stale, and a new process resumes from the shared transcript instead.

Cancelling the caller of :meth:`AgentRunner.run` closes the agent, which ends the CLI and its tool processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKError, CLIConnectionError, ProcessError

from claude_agent_api.agent import checkpoints
from claude_agent_api.agent.client import AgentClient, Approver, Decision, Emit, PermissionAsk, Prompt, RunOutcome
from claude_agent_api.agent.hooks import HookReply, Relay
from claude_agent_api.agent.store import SqlSessionStore
from claude_agent_api.agent.translate import Event
from claude_agent_api.config import Settings
from claude_agent_api.kit.logging import redactor
from claude_agent_api.kit.metrics import Metrics
from claude_agent_api.kit.workspace import CliDirs

log = structlog.get_logger("claude_agent_api.agent")
AgentOptions = ClaudeAgentOptions  # for type hints elsewhere: only this package imports the SDK

__all__ = [
    "AgentOptions",
    "AgentRunner",
    "Approver",
    "Decision",
    "Emit",
    "HookReply",
    "PermissionAsk",
    "Prompt",
    "Relay",
    "RunOutcome",
    "TurnSpec",
    "base_env",
]


def base_env(settings: Settings, dirs: CliDirs) -> dict[str, str]:
    """Process hygiene for every CLI: private config/home/temp, the model endpoint, no stray traffic."""
    env = {
        "CLAUDE_CONFIG_DIR": str(dirs.config),
        "HOME": str(dirs.home),
        "CLAUDE_CODE_TMPDIR": str(dirs.tmp),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS": "1",
        # The classic TodoWrite list (reported as `todo` events) instead of the task-list tools.
        "CLAUDE_CODE_ENABLE_TODO_TOOLS": "1",
        "CLAUDE_CODE_ENABLE_TASKS": "false",
    }
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"  # the CLI refuses bypassPermissions as root without it
    if settings.anthropic_base_url:
        env["ANTHROPIC_BASE_URL"] = settings.anthropic_base_url
    if settings.anthropic_api_key is not None:
        env["ANTHROPIC_API_KEY"] = settings.anthropic_api_key.get_secret_value()
    if settings.agent_max_retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(settings.agent_max_retries)
    return env


@dataclass(frozen=True)
class TurnSpec:
    """One turn of one session, as the run manager asks for it."""

    session_id: str
    run_id: str
    options: ClaudeAgentOptions
    fingerprint: str
    prompt: Prompt
    workspace: Path
    last_run_id: str | None  # the session's previous run (None for a new session)
    approver: Approver | None = None  # asked when the CLI wants a tool approved or a question answered
    webhooks: list[tuple[list[str], str | None, float]] | None = None  # (events, tool matcher, timeout)
    relay: Relay | None = None  # delivers hook events to those webhooks


class AgentRunner:
    """The one seam to ``claude_agent_sdk`` for running turns; owns the warm agents of this instance."""

    def __init__(self, settings: Settings, metrics: Metrics, store: SqlSessionStore) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self._idle: OrderedDict[str, AgentClient] = OrderedDict()
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        self._busy: dict[str, AgentClient] = {}

    @property
    def warm_sessions(self) -> list[str]:
        return list(self._idle)

    async def run(self, spec: TurnSpec, emit: Emit) -> RunOutcome:
        # File checkpointing: the CLI state is saved to SQL after the turn and restored before a cold start.
        tracker = checkpoints.TurnTracker(emit) if spec.options.enable_file_checkpointing else None
        agent = await self._take_warm(spec)
        if agent is None:
            options = spec.options
            if tracker is not None:
                options = await checkpoints.prepare(self.store.session_factory, spec.session_id, options, tracker)
            else:  # the SDK refuses a store with file checkpointing
                # Each turn is mirrored to SQL (batched: before its result is yielded), so any instance can resume.
                options = dataclasses.replace(options, session_store=self.store, session_store_flush="batched")
            # Every process may be switched to any permission mode later (by a warm turn, or /control); which
            # mode a request may ask for is the API's decision, not the process's launch flags'.
            options = dataclasses.replace(
                options, extra_args={**options.extra_args, "allow-dangerously-skip-permissions": None}
            )
            if self.settings.agent_cli_path is not None:
                options = dataclasses.replace(options, cli_path=self.settings.agent_cli_path)
            agent = AgentClient(
                options, session_id=spec.session_id, fingerprint=spec.fingerprint, webhooks=spec.webhooks
            )
            try:
                await agent.start()
            except (ClaudeSDKError, OSError) as exc:
                await agent.close()
                return RunOutcome(error=_failure(exc, agent))
            self.metrics.agent_starts.labels("cold").inc()
        else:
            self.metrics.agent_starts.labels("warm").inc()
        self._busy[spec.session_id] = agent
        try:
            outcome = await agent.turn(
                spec.prompt,
                tracker.emit if tracker is not None else emit,
                workspace=spec.workspace,
                model=spec.options.model,
                mode=spec.options.permission_mode,
                approver=spec.approver,
                relay=spec.relay,
            )
        except asyncio.CancelledError:
            await asyncio.shield(agent.close())
            raise
        except (ClaudeSDKError, ConnectionError) as exc:
            await agent.close()
            return RunOutcome(error=_failure(exc, agent))
        finally:
            self._busy.pop(spec.session_id, None)
            if tracker is not None:
                await asyncio.shield(self._save_checkpoint(spec, tracker))
        agent.last_run_id = spec.run_id
        if outcome.error is None and agent.alive:
            await self._keep_warm(agent)
        else:
            await agent.close()
        return outcome

    async def _save_checkpoint(self, spec: TurnSpec, tracker: checkpoints.TurnTracker) -> None:
        await checkpoints.after_turn(
            self.store.session_factory,
            session_id=spec.session_id,
            run_id=spec.run_id,
            options=spec.options,
            workspace=spec.workspace,
            prompt=spec.prompt,
            tracker=tracker,
        )

    async def _take_warm(self, spec: TurnSpec) -> AgentClient | None:
        agent = self._idle.pop(spec.session_id, None)
        self.metrics.warm_agents.set(len(self._idle))
        if agent is None:
            return None
        if (timer := self._idle_timers.pop(spec.session_id, None)) is not None:
            timer.cancel()
        if agent.alive and agent.fingerprint == spec.fingerprint and agent.last_run_id == spec.last_run_id:
            return agent
        await agent.close()
        return None

    async def _keep_warm(self, agent: AgentClient) -> None:
        if self.settings.warm_pool_size <= 0 or self.settings.warm_idle_seconds <= 0:
            await agent.close()
            return
        self._idle[agent.session_id] = agent
        self._idle.move_to_end(agent.session_id)
        loop = asyncio.get_running_loop()
        self._idle_timers[agent.session_id] = loop.call_later(
            self.settings.warm_idle_seconds, lambda: asyncio.ensure_future(self.release(agent.session_id))
        )
        while len(self._idle) > self.settings.warm_pool_size:
            oldest, _ = next(iter(self._idle.items()))
            await self.release(oldest)
        self.metrics.warm_agents.set(len(self._idle))

    async def interrupt(self, session_id: str) -> bool:
        """Ask the CLI of a running turn of this session (on this instance) to stop."""
        agent = self._busy.get(session_id)
        if agent is None:
            return False
        with contextlib.suppress(Exception):
            await agent.interrupt()
        return True

    async def control(self, session_id: str, *, permission_mode: str | None, model: str | None) -> bool:
        """Change the permission mode and/or model of the session's running turn on this instance."""
        agent = self._busy.get(session_id)
        if agent is None:
            return False
        if permission_mode:
            await agent.set_permission_mode(permission_mode)
        if model:
            await agent.set_model(model)
        return True

    async def mcp_status(self, session_id: str) -> dict[str, Any] | None:
        """The SDK's live MCP status of the session's agent on this instance (running or warm), if any."""
        agent = self._busy.get(session_id) or self._idle.get(session_id)
        if agent is None or not agent.alive:
            return None
        try:
            return await agent.mcp_status()
        except Exception:
            return None

    async def release(self, session_id: str) -> None:
        """Close the session's warm agent, if this instance keeps one."""
        if (timer := self._idle_timers.pop(session_id, None)) is not None:
            timer.cancel()
        agent = self._idle.pop(session_id, None)
        self.metrics.warm_agents.set(len(self._idle))
        if agent is not None:
            await agent.close()

    async def close(self) -> None:
        for session_id in list(self._idle):
            await self.release(session_id)


def _failure(exc: BaseException, agent: AgentClient) -> Event:
    """An error event that says why (the CLI's own stderr), with secrets scrubbed."""
    code = "AGENT_START_FAILED" if isinstance(exc, CLIConnectionError) else "AGENT_PROCESS_FAILED"
    if not isinstance(exc, ClaudeSDKError | ProcessError | ConnectionError | OSError):
        code = "AGENT_ERROR"
    tail = "\n".join(line.rstrip() for line in agent.stderr if line.strip())[-2000:]
    summary = "The agent CLI failed to start" if code == "AGENT_START_FAILED" else "The agent CLI failed"
    message = redactor.scrub_text(f"{summary}: {tail or str(exc) or type(exc).__name__}")
    log.warning("agent.failed", code=code, error=type(exc).__name__, reason=message)
    return {"type": "error", "code": code, "message": message, "details": {"exception": type(exc).__name__}}
