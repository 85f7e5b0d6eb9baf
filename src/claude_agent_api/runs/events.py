"""The events of a run: what a client sees over SSE (``event:`` name, ``id:`` sequence) and WebSocket.

Event names, in the order a run emits them:

- ``init`` — the agent started: session id, model, tools, MCP server statuses, slash commands, skills,
  agents, plugins, permission mode, output style.
- ``message`` — one message of the conversation: ``role`` ``assistant`` | ``user`` | ``system``, typed
  content blocks (``text``, ``thinking``, ``tool_use``, ``tool_result``), ``parent_tool_use_id`` for a
  subagent's messages, ``usage`` on assistant messages; system messages carry ``subtype`` and ``data``
  (task progress of background subagents, for example).
- ``partial`` — a token-level stream delta (only when ``include_partial_messages`` is set).
- ``todo`` — the agent's task list, whole, each time TodoWrite is used.
- ``permission_request`` — the agent wants to use a tool and waits for an answer (request id, tool, input,
  suggestions, ``expires_at``); answer with ``POST /sessions/{id}/permissions/{request_id}``.
- ``question`` — the agent asks the user (``AskUserQuestion``: questions with options); answer with
  ``POST /sessions/{id}/answer``.
- ``hook`` — a lifecycle hook delivered to one of the request's webhooks (only with ``include_hook_events``).
- ``result`` — the outcome of a turn: subtype, ``stop_reason`` (``end_turn``, ``max_turns_reached``,
  ``budget_exceeded``, ``structured_output_missing``, ``error``…), usage, model usage, cost, result text,
  structured output. A run with background subagents can have more than one.
- ``error`` — something went wrong (``code``, ``message``); always followed by ``done``.
- ``done`` — the last event of every run, with the run's final status.

Every event carries ``seq`` (its number in the run, from 1), ``run_id`` and ``session_id``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int = Field(description="Position of the event in its run, from 1 (the SSE `id:`).")
    run_id: str
    session_id: str


class TextContent(BaseModel):
    type: Literal["text"]
    text: str


class ThinkingContent(BaseModel):
    type: Literal["thinking"]
    thinking: str


class ToolUseContent(BaseModel):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultContent(BaseModel):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None


ContentBlock = Annotated[
    TextContent | ThinkingContent | ToolUseContent | ToolResultContent, Field(discriminator="type")
]


class InitEvent(_Event):
    type: Literal["init"]
    model: str | None = None
    cwd: str | None = Field(default=None, description="Working directory, relative to the key's workspace.")
    tools: list[str] = []
    mcp_servers: list[dict[str, Any]] = []
    slash_commands: list[str] = []
    skills: list[str] = []
    agents: list[str] = []
    plugins: list[dict[str, Any]] = []
    permission_mode: str | None = None
    output_style: str | None = None
    claude_code_version: str | None = None


class MessageEvent(_Event):
    type: Literal["message"]
    role: Literal["assistant", "user", "system"]
    content: list[ContentBlock] = []
    uuid: str | None = None
    parent_tool_use_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    subtype: str | None = Field(default=None, description="For system messages.")
    data: dict[str, Any] | None = Field(default=None, description="For system messages.")


class PartialEvent(_Event):
    type: Literal["partial"]
    event: dict[str, Any]
    parent_tool_use_id: str | None = None


class TodoItem(BaseModel):
    content: str
    status: str
    activeForm: str | None = None


class TodoEvent(_Event):
    type: Literal["todo"]
    todos: list[TodoItem]
    parent_tool_use_id: str | None = None


class PermissionRequestEvent(_Event):
    type: Literal["permission_request"]
    request_id: str = Field(description="Answer with POST /sessions/{id}/permissions/{request_id}.")
    tool_name: str
    input: dict[str, Any]
    suggestions: list[dict[str, Any]] = []
    tool_use_id: str | None = None
    agent_id: str | None = Field(default=None, description="Set when a subagent asks.")
    title: str | None = None
    description: str | None = None
    decision_reason: str | None = None
    blocked_path: str | None = None
    expires_at: str = Field(description="No answer by then is a deny.")


class QuestionEvent(_Event):
    type: Literal["question"]
    question_id: str = Field(description="Answer with POST /sessions/{id}/answer.")
    questions: list[dict[str, Any]] = Field(
        description="Each: question, header, options (label, description), multiSelect."
    )
    tool_use_id: str | None = None
    agent_id: str | None = None
    expires_at: str


class HookEvent(_Event):
    type: Literal["hook"]
    event: str = Field(description="The hook: PreToolUse, PostToolUse, Stop…")
    tool_name: str | None = None
    url_host: str
    webhook_id: str
    ok: bool
    status: int | None = None
    attempts: int
    duration_ms: float
    decision: str | None = Field(default=None, description="PreToolUse: allow, deny or ask (deny when it failed).")
    error: str | None = None


class ResultEvent(_Event):
    type: Literal["result"]
    subtype: str
    stop_reason: str | None
    is_error: bool
    num_turns: int
    duration_ms: int
    duration_api_ms: int | None = None
    usage: dict[str, Any] | None = None
    model_usage: dict[str, Any] | None = None
    total_cost_usd: float | None = None
    result: str | None = None
    structured_output: Any = None
    permission_denials: list[Any] | None = None
    errors: list[str] | None = None
    api_error_status: int | None = None
    terminal_reason: str | None = None


class ErrorEvent(_Event):
    type: Literal["error"]
    code: str
    message: str
    details: dict[str, Any] = {}


class DoneEvent(_Event):
    type: Literal["done"]
    status: str = Field(description="The run's final status.")
    reconnect: bool = Field(default=False, description="True when the server stopped streaming early.")


RunEvent = Annotated[
    InitEvent
    | MessageEvent
    | PartialEvent
    | TodoEvent
    | PermissionRequestEvent
    | QuestionEvent
    | HookEvent
    | ResultEvent
    | ErrorEvent
    | DoneEvent,
    Field(discriminator="type"),
]
EVENT_NAMES = (
    "init",
    "message",
    "partial",
    "todo",
    "permission_request",
    "question",
    "hook",
    "result",
    "error",
    "done",
)
