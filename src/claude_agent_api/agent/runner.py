"""Drive one agent turn through the real SDK and CLI, emitting our events as they happen.

One call of :meth:`AgentRunner.run` opens a ``ClaudeSDKClient``, sends the prompt, translates every message,
and closes the client — all inside the calling task (the SDK's anyio task groups must be entered and left in
one task). Cancelling that task closes the client, which ends the CLI and its tool processes.

A run is over when the session is idle, not at the first result: with background subagents the CLI yields a
first ``ResultMessage`` while a subagent still works and a second one after the wake-up turn. The CLI reports
``session_state_changed`` frames (``CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS=1``); the run ends at the first
``idle`` once a result has been seen.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ClaudeSDKError,
    CLIConnectionError,
    ProcessError,
    ResultMessage,
    SystemMessage,
)

from claude_agent_api.agent.translate import Event, mark_missing_structured_output, translate
from claude_agent_api.config import Settings
from claude_agent_api.kit.logging import redactor
from claude_agent_api.kit.workspace import CliDirs

log = structlog.get_logger("claude_agent_api.agent")
Emit = Callable[[Event], Awaitable[None]]
Prompt = str | list[dict[str, Any]]
AgentOptions = ClaudeAgentOptions  # for type hints elsewhere: only this package imports the SDK


@dataclass
class RunOutcome:
    """What a run ended with: its result events (possibly several) and, if it failed, why."""

    results: list[Event] = field(default_factory=list)
    error: Event | None = None


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


def _relative_to(workspace: Path) -> Callable[[str], str | None]:
    """Paths reported by the CLI, shown relative to the key's workspace (None when outside it)."""
    root = workspace.resolve()

    def relative(path: str) -> str | None:
        resolved = Path(path).resolve()
        return str(resolved.relative_to(root)) if resolved == root or root in resolved.parents else None

    return relative


async def _prompt_stream(blocks: list[dict[str, Any]], session_id: str) -> AsyncIterator[dict[str, Any]]:
    yield {
        "type": "user",
        "message": {"role": "user", "content": blocks},
        "parent_tool_use_id": None,
        "session_id": session_id,
    }


class AgentRunner:
    """The one seam to ``claude_agent_sdk`` for running turns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(
        self, options: ClaudeAgentOptions, prompt: Prompt, emit: Emit, *, session_id: str, workspace: Path
    ) -> RunOutcome:
        stderr: deque[str] = deque(maxlen=40)
        options = dataclasses.replace(
            options, stderr=stderr.append, cli_path=self.settings.agent_cli_path or options.cli_path
        )
        outcome = RunOutcome()
        relative_cwd = _relative_to(workspace)

        try:
            async with ClaudeSDKClient(options) as client:
                if isinstance(prompt, str):
                    await client.query(prompt, session_id=session_id)
                else:
                    await client.query(_prompt_stream(prompt, session_id), session_id=session_id)
                state: str | None = None
                async for message in client.receive_messages():
                    if isinstance(message, SystemMessage) and message.subtype == "session_state_changed":
                        state = message.data.get("state")
                    for event in translate(message, relative_cwd):
                        if event["type"] == "result" and options.output_format is not None:
                            mark_missing_structured_output(event)
                        await emit(event)
                        if event["type"] == "result":
                            outcome.results.append(event)
                    if isinstance(message, ResultMessage) and state is None:
                        state = "result-without-state"
                    if outcome.results and state in ("idle", "result-without-state"):
                        break
        except CLIConnectionError as exc:
            outcome.error = self._failure("AGENT_START_FAILED", "The agent CLI failed to start", exc, stderr)
        except ProcessError as exc:
            if not outcome.results:
                outcome.error = self._failure("AGENT_PROCESS_FAILED", "The agent CLI exited", exc, stderr)
        except ClaudeSDKError as exc:
            outcome.error = self._failure("AGENT_ERROR", "The agent failed", exc, stderr)
        return outcome

    @staticmethod
    def _failure(code: str, summary: str, exc: Exception, stderr: deque[str]) -> Event:
        """An error event that says why (the CLI's own stderr), with secrets scrubbed."""
        tail = "\n".join(line.rstrip() for line in stderr if line.strip())[-2000:]
        reason = tail or str(exc) or type(exc).__name__
        message = redactor.scrub_text(f"{summary}: {reason}")
        log.warning("agent.failed", code=code, error=type(exc).__name__, reason=message)
        return {"type": "error", "code": code, "message": message, "details": {"exception": type(exc).__name__}}
