"""SDK messages → our run events (plain dicts shaped like :mod:`claude_agent_api.runs.events`).

Pure functions: no I/O, no state beyond what is passed in. ``seq``, ``run_id`` and ``session_id`` are added by
the run manager when an event is appended to the run's log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

Event = dict[str, Any]

# ResultMessage.subtype → our stop reason, for the subtypes that are not plain success.
_STOP_REASONS = {
    "error_max_turns": "max_turns_reached",
    "error_max_budget_usd": "budget_exceeded",
    "error_max_structured_output_retries": "structured_output_invalid",
}


def content_blocks(content: str | list[Any]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock):
            blocks.append({"type": "text", "text": block.text})
        elif isinstance(block, ThinkingBlock):
            blocks.append({"type": "thinking", "thinking": block.thinking})
        elif isinstance(block, ToolUseBlock):
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
        elif isinstance(block, ToolResultBlock):
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": block.tool_use_id,
                    "content": block.content,
                    "is_error": block.is_error,
                }
            )
    return blocks


def _todo_events(message: AssistantMessage) -> list[Event]:
    events = []
    for block in message.content:
        if isinstance(block, ToolUseBlock) and block.name == "TodoWrite":
            todos = block.input.get("todos")
            if isinstance(todos, list):
                events.append(
                    {
                        "type": "todo",
                        "todos": [
                            {
                                "content": t.get("content", ""),
                                "status": t.get("status", ""),
                                "activeForm": t.get("activeForm"),
                            }
                            for t in todos
                            if isinstance(t, dict)
                        ],
                        "parent_tool_use_id": message.parent_tool_use_id,
                    }
                )
    return events


def init_event(data: dict[str, Any], relative_cwd: Callable[[str], str | None]) -> Event:
    return {
        "type": "init",
        "model": data.get("model"),
        "cwd": relative_cwd(data["cwd"]) if isinstance(data.get("cwd"), str) else None,
        "tools": list(data.get("tools") or []),
        "mcp_servers": list(data.get("mcp_servers") or []),
        "slash_commands": list(data.get("slash_commands") or []),
        "skills": list(data.get("skills") or []),
        "agents": list(data.get("agents") or []),
        "plugins": list(data.get("plugins") or []),
        "permission_mode": data.get("permissionMode"),
        "output_style": data.get("output_style"),
        "claude_code_version": data.get("claude_code_version"),
    }


def result_event(message: ResultMessage) -> Event:
    stop_reason = _STOP_REASONS.get(message.subtype)
    if stop_reason is None:
        if message.subtype == "success":
            stop_reason = message.stop_reason or "end_turn"
        elif message.terminal_reason in ("aborted_tools", "aborted_streaming", "aborted"):
            stop_reason = "interrupted"
        else:
            stop_reason = "error"
    return {
        "type": "result",
        "subtype": message.subtype,
        "stop_reason": stop_reason,
        "is_error": message.is_error,
        "num_turns": message.num_turns,
        "duration_ms": message.duration_ms,
        "duration_api_ms": message.duration_api_ms,
        "usage": message.usage,
        "model_usage": {k: _plain(v) for k, v in (message.model_usage or {}).items()} or None,
        "total_cost_usd": message.total_cost_usd,
        "result": message.result,
        "structured_output": message.structured_output,
        "permission_denials": [_plain(d) for d in message.permission_denials or []] or None,
        "errors": message.errors,
        "api_error_status": message.api_error_status,
        "terminal_reason": message.terminal_reason,
    }


def mark_missing_structured_output(event: Event) -> None:
    """The SDK reports success with ``structured_output=None`` when the model never produced it: make that an
    error result (``stop_reason="structured_output_missing"``) rather than a silent null."""
    if not event["is_error"] and event.get("structured_output") is None:
        event.update(is_error=True, stop_reason="structured_output_missing")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def translate(message: Any, relative_cwd: Callable[[str], str | None]) -> list[Event]:
    """The events for one SDK message (none for frames that are only the runner's business)."""
    if isinstance(message, AssistantMessage):
        event: Event = {
            "type": "message",
            "role": "assistant",
            "content": content_blocks(message.content),
            "uuid": message.uuid,
            "parent_tool_use_id": message.parent_tool_use_id,
            "model": message.model,
            "usage": message.usage,
            "error": message.error,
        }
        return [event, *_todo_events(message)]
    if isinstance(message, UserMessage):
        return [
            {
                "type": "message",
                "role": "user",
                "content": content_blocks(message.content),
                "uuid": message.uuid,
                "parent_tool_use_id": message.parent_tool_use_id,
            }
        ]
    if isinstance(message, ResultMessage):
        return [result_event(message)]
    if isinstance(message, StreamEvent):
        return [{"type": "partial", "event": message.event, "parent_tool_use_id": message.parent_tool_use_id}]
    if isinstance(message, SystemMessage):
        if message.subtype == "init":
            return [init_event(message.data, relative_cwd)]
        if message.subtype == "session_state_changed":
            return []
        data = {k: v for k, v in message.data.items() if k not in ("type", "subtype")}
        return [{"type": "message", "role": "system", "content": [], "subtype": message.subtype, "data": data}]
    # RateLimitEvent, ConversationResetMessage and future kinds: surfaced as system messages.
    plain = _plain(message)
    data = plain if isinstance(plain, dict) else {"value": repr(plain)}
    return [{"type": "message", "role": "system", "content": [], "subtype": type(message).__name__, "data": data}]
