"""One connected agent: a ``ClaudeSDKClient`` opened, used and closed by one dedicated task.

The SDK's anyio task groups must be entered and left in the same task, while runs, request handlers and SSE
generators come and go; so :class:`AgentClient` starts a task that owns the client, and everything else
sends it work through a queue. The same object serves many turns of one session (a *warm* agent: ~30 ms a
turn instead of ~0.5 s for a new process).

A turn ends when the session is idle, not at the first result: with background subagents the CLI yields a
first ``ResultMessage`` while a subagent still works and a second one after the wake-up turn. The CLI reports
``session_state_changed`` frames (``CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS=1``); the turn ends at the first
``idle`` once a result has been seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    SystemMessage,
    ToolPermissionContext,
)
from claude_agent_sdk.types import CanUseToolShadowedWarning

from claude_agent_api.agent.hooks import Relay, build_hooks
from claude_agent_api.agent.translate import Event, mark_missing_structured_output, translate

# can_use_tool is always set (it is what offers AskUserQuestion and asks humans about tools); under
# bypassPermissions or whole-tool allow rules the SDK warns that it is shadowed for those tools, which is intended.
warnings.filterwarnings("ignore", category=CanUseToolShadowedWarning)

Emit = Callable[[Event], Awaitable[None]]
Prompt = str | list[dict[str, Any]]
Work = Callable[[ClaudeSDKClient], Awaitable[Any]]


@dataclass(frozen=True)
class PermissionAsk:
    """The CLI asks whether a tool may run (or, for ``AskUserQuestion``, what the user answers)."""

    tool_name: str
    input: dict[str, Any]
    tool_use_id: str | None
    agent_id: str | None
    suggestions: list[dict[str, Any]]
    title: str | None = None
    description: str | None = None
    decision_reason: str | None = None
    blocked_path: str | None = None


@dataclass(frozen=True)
class Decision:
    allow: bool
    updated_input: dict[str, Any] | None = None
    message: str = ""
    interrupt: bool = False


Approver = Callable[[PermissionAsk], Awaitable[Decision]]


@dataclass
class RunOutcome:
    """What a turn ended with: its result events (possibly several), and why it failed if it did."""

    results: list[Event] = field(default_factory=list)
    error: Event | None = None
    cost_before: float = 0.0  # the process's cumulative cost when the turn started


async def _prompt_stream(blocks: list[dict[str, Any]], session_id: str) -> AsyncIterator[dict[str, Any]]:
    yield {
        "type": "user",
        "message": {"role": "user", "content": blocks},
        "parent_tool_use_id": None,
        "session_id": session_id,
    }


class AgentClient:
    def __init__(
        self,
        options: ClaudeAgentOptions,
        *,
        session_id: str,
        fingerprint: str,
        webhooks: list[tuple[list[str], str | None, float]] | None = None,
    ) -> None:
        self.stderr: deque[str] = deque(maxlen=40)  # the CLI's last words, for errors that say why
        # Always set: it is what offers AskUserQuestion to the model, and what asks a human about tools.
        self.options = dataclasses.replace(options, stderr=self.stderr.append, can_use_tool=self._can_use_tool)
        self.approver: Approver | None = None  # set by the run that is using the agent
        self.relay: Relay | None = None  # delivers hook events to the run's webhooks
        if webhooks:
            self.options = dataclasses.replace(self.options, hooks=build_hooks(webhooks, lambda: self.relay))
        self.session_id = session_id
        self.fingerprint = fingerprint
        self.model = options.model
        self.permission_mode: str = options.permission_mode or "default"
        self.cost = 0.0  # cumulative, as the CLI reports it for this process
        self.last_run_id: str | None = None
        self._work: asyncio.Queue[tuple[Work, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._client: ClaudeSDKClient | None = None
        self._working = False  # a work item (a turn) is executing in the owning task
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._client is not None

    async def start(self) -> None:
        """Start the owning task and wait until the CLI is connected (raises the SDK's error if it is not)."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready), name=f"agent-{self.session_id}")
        await ready

    async def _own(self, ready: asyncio.Future[None]) -> None:
        try:
            async with ClaudeSDKClient(self.options) as client:
                self._client = client
                ready.set_result(None)
                while (item := await self._work.get()) is not None:
                    work, result = item
                    self._working = True
                    try:
                        result.set_result(await work(client))
                    except Exception as exc:
                        if not result.done():
                            result.set_exception(exc)
                    finally:
                        self._working = False
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._client = None
            while not self._work.empty():
                pending = self._work.get_nowait()
                if pending is not None and not pending[1].done():
                    pending[1].set_exception(ConnectionError("the agent process ended"))

    async def call(self, work: Work) -> Any:
        """Run ``work(client)`` in the owning task and return its result."""
        if not self.alive:
            raise ConnectionError("the agent process ended")
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._work.put((work, result))
        return await result

    async def _can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow | PermissionResultDeny:
        approver = self.approver
        if approver is None:
            return PermissionResultDeny(message="No one is attending this session to approve tools.")
        ask = PermissionAsk(
            tool_name=tool_name,
            input=tool_input,
            tool_use_id=context.tool_use_id,
            agent_id=context.agent_id,
            suggestions=[s.to_dict() for s in context.suggestions],
            title=context.title,
            description=context.description,
            decision_reason=context.decision_reason,
            blocked_path=context.blocked_path,
        )
        decision = await approver(ask)
        if decision.allow:
            return PermissionResultAllow(updated_input=decision.updated_input)
        return PermissionResultDeny(message=decision.message or "Denied.", interrupt=decision.interrupt)

    async def mcp_status(self) -> dict[str, Any]:
        if self._client is None:
            raise ConnectionError("the agent process ended")
        status = await self._client.get_mcp_status()
        return dict(status)

    async def set_permission_mode(self, mode: str) -> None:
        if self._client is not None:
            await self._client.set_permission_mode(mode)  # type: ignore[arg-type]
            self.permission_mode = mode

    async def set_model(self, model: str) -> None:
        if self._client is not None:
            await self._client.set_model(model)
            self.model = model

    async def interrupt(self) -> None:
        """Ask the CLI to stop the current turn (it ends with an ``error_during_execution`` result)."""
        if self._client is not None:
            await self._client.interrupt()

    async def close(self) -> None:
        """Disconnect: the CLI and its tool processes end. Safe to call more than once."""
        if self._task is None:
            return
        if not self._task.done():
            if self._working:
                self._task.cancel()  # mid-turn: leaving the client's context ends the CLI at once
            else:
                await self._work.put(None)
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), 10)
                except TimeoutError:
                    self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def turn(
        self,
        prompt: Prompt,
        emit: Emit,
        *,
        workspace: Path,
        model: str | None,
        mode: str | None,
        approver: Approver | None = None,
        relay: Relay | None = None,
    ) -> RunOutcome:
        structured = self.options.output_format is not None
        relative_cwd = _relative_to(workspace)

        async def work(client: ClaudeSDKClient) -> RunOutcome:
            outcome = RunOutcome(cost_before=self.cost)
            if model and model != self.model:
                await client.set_model(model)
                self.model = model
            # A turn that names no mode runs in the default one, as on a new process: never inherit a wider mode.
            wanted_mode = mode or "default"
            if wanted_mode != self.permission_mode:
                await client.set_permission_mode(wanted_mode)  # type: ignore[arg-type]
                self.permission_mode = wanted_mode
            if isinstance(prompt, str):
                await client.query(prompt, session_id=self.session_id)
            else:
                await client.query(_prompt_stream(prompt, self.session_id), session_id=self.session_id)
            state: str | None = None
            async for message in client.receive_messages():
                if isinstance(message, SystemMessage) and message.subtype == "session_state_changed":
                    state = message.data.get("state")
                if isinstance(message, ResultMessage):
                    self.cost = message.total_cost_usd or self.cost
                    state = state or "result-without-state"
                for event in translate(message, relative_cwd):
                    if event["type"] == "result":
                        if structured:
                            mark_missing_structured_output(event)
                        # The CLI counts cost per process; a run reports its own.
                        if event.get("total_cost_usd") is not None:
                            event["total_cost_usd"] = round(event["total_cost_usd"] - outcome.cost_before, 10)
                        outcome.results.append(event)
                    await emit(event)
                if outcome.results and state in ("idle", "result-without-state"):
                    break
            return outcome

        self.approver, self.relay = approver, relay
        try:
            result: RunOutcome = await self.call(work)
        finally:
            self.approver, self.relay = None, None
        return result


def _relative_to(workspace: Path) -> Callable[[str], str | None]:
    """Paths reported by the CLI, shown relative to the key's workspace (None when outside it)."""
    root = workspace.resolve()

    def relative(path: str) -> str | None:
        resolved = Path(path).resolve()
        return str(resolved.relative_to(root)) if resolved == root or root in resolved.parents else None

    return relative
