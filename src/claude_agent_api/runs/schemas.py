"""Request bodies that start agent runs: ``POST /api/v1/query`` (and, later, resume).

Contract: every option in a request reaches the SDK, or the request is refused — none is accepted and ignored.
A bad value is a 422 ``VALIDATION_ERROR`` whose ``loc`` names the field (``allowed_tools.2``, ``env.FOO``,
``mcp_servers.git.url``…), raised before anything runs. Unknown fields are refused too (``extra="forbid"``).

Checked here, from the request alone: types, sizes and patterns; tool names against the built-in tools and this
request's ``mcp_servers`` (see ``request_rules``); reserved environment variable names; JSON Schemas; base64
images; relative paths without ``..``. Checked by ``agent.options`` with the server's policy: that paths stay
inside the key's workspace (symlinks included) and exist, the environment allow-list, ``${VAR}`` values.

:class:`RunOptions` holds the per-run options so that a later resume request can reuse them;
:class:`QueryRequest` adds the prompt and the session to continue.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ModelWrapValidatorHandler, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from claude_agent_api.webhooks.schemas import WebhookSpec

from .request_parts import (
    MAX_ARGUMENT_BYTES,
    MAX_PROMPT_CHARS,
    AgentSpec,
    ContentBlock,
    EffortLevel,
    McpServerSpec,
    ModelName,
    OutputFormatSpec,
    PermissionModeName,
    PluginSpec,
    RelativePath,
    SkillName,
    Strict,
    SystemPromptPresetSpec,
    ToolNames,
    ToolsPresetSpec,
    fits_argument,
)
from .request_rules import MAX_ENV_VALUE, env_name_problem, tool_name_problem

SettingSource = Literal["user", "project", "local"]


def _env_name(name: str) -> str:
    if problem := env_name_problem(name):
        raise ValueError(problem)
    return name


def _env_value(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL byte")
    return value


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


EnvName = Annotated[str, AfterValidator(_env_name)]
EnvValue = Annotated[str, Field(max_length=MAX_ENV_VALUE), AfterValidator(_env_value)]
AgentName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
McpServerName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
OutputStyleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}$")]
SystemPromptText = Annotated[str, AfterValidator(fits_argument)]

# Fields whose value is a union: pydantic puts the union member's name after the field name in ``loc``
# (``skills.list[constrained-str].0``); :func:`_clean_loc` takes it out so ``loc`` reads like the request.
_UNION_FIELDS = frozenset({"prompt", "system_prompt", "tools", "skills"})


def _clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _UNION_FIELDS and isinstance(parts[1], str):
        del parts[1]
        if parts[0] == "prompt" and len(parts) > 2 and isinstance(parts[1], int):
            del parts[2]  # the content block's type tag
    elif len(parts) > 2 and parts[0] == "mcp_servers":
        del parts[2]  # the server's type tag
    return tuple(parts)


def _cleaned(errors: list[ErrorDetails]) -> list[InitErrorDetails]:
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    out: list[InitErrorDetails] = []
    for err in errors:
        loc = _clean_loc(err["loc"])
        if (loc, err["msg"]) in seen:
            continue
        seen.add((loc, err["msg"]))
        out.append(InitErrorDetails(type=PydanticCustomError(err["type"], err["msg"]), loc=loc, input=err["input"]))
    return out


class RunOptions(Strict):
    """Options of one agent run, each mapped to one ``ClaudeAgentOptions`` field by ``agent.options``."""

    model: ModelName | None = Field(default=None, description="Model id or alias; default: the CLI's.")
    fallback_model: ModelName | None = Field(default=None, description="Model used when the main one is overloaded.")
    system_prompt: SystemPromptText | SystemPromptPresetSpec | None = Field(
        default=None,
        description="A custom system prompt, or the Claude Code preset (optionally with text appended). "
        "Default: the SDK's (an empty system prompt).",
    )
    output_style: OutputStyleName | None = Field(default=None, description="Output style name (CLI settings).")
    tools: ToolNames | ToolsPresetSpec | None = Field(
        default=None, description="The base tool set: built-in tool names, or the claude_code preset."
    )
    allowed_tools: ToolNames = Field(
        default_factory=list, description="Tools and rules allowed without asking, e.g. 'Read', 'Bash(git diff:*)'."
    )
    disallowed_tools: ToolNames = Field(default_factory=list, description="Tools and rules always denied.")
    permission_mode: PermissionModeName | None = Field(default=None, description="How tool use is approved.")
    max_turns: int | None = Field(default=None, ge=1, le=500)
    max_budget_usd: float | None = Field(default=None, gt=0, le=1000)
    max_thinking_tokens: int | None = Field(default=None, ge=1024, le=128_000)
    effort: EffortLevel | None = None
    cwd: RelativePath | None = Field(
        default=None, description="Working directory relative to the key's workspace (created if missing)."
    )
    add_dirs: Annotated[list[RelativePath], Field(max_length=20)] = Field(
        default_factory=list, description="More directories the agent may use, relative to the workspace."
    )
    env: Annotated[dict[EnvName, EnvValue], Field(max_length=100)] = Field(
        default_factory=dict, description="Environment variables for the agent; names must be allow-listed."
    )
    setting_sources: list[SettingSource] = Field(
        default_factory=list,
        description="Filesystem settings to load ('project' = .claude/ in cwd). Default: none.",
    )
    skills: Annotated[list[SkillName], Field(max_length=100)] | Literal["all"] | None = Field(
        default=None, description="Skills the agent may use: names, or 'all'."
    )
    agents: Annotated[dict[AgentName, AgentSpec], Field(max_length=50)] | None = Field(
        default=None, description="Subagents by name."
    )
    mcp_servers: Annotated[dict[McpServerName, McpServerSpec], Field(max_length=20)] = Field(
        default_factory=dict, description="MCP servers by name (stdio, sse, http); ${VAR} expansion in values."
    )
    plugins: Annotated[list[PluginSpec], Field(max_length=20)] = Field(default_factory=list)
    output_format: OutputFormatSpec | None = Field(default=None, description="Structured output (JSON Schema).")
    enable_file_checkpointing: bool = Field(default=False, description="Record file state for rewind.")
    include_partial_messages: bool = Field(default=False, description="Stream token deltas as partial events.")
    webhooks: list[WebhookSpec] = Field(
        default_factory=list,
        max_length=10,
        description="Lifecycle hooks delivered to your URLs, signed with the key's webhook secret "
        "(Standard Webhooks). PreToolUse may answer allow / deny / ask or rewrite the input, and fails closed.",
    )
    include_hook_events: bool = Field(default=False, description="Stream a `hook` event for each delivery.")
    user: Annotated[str, Field(max_length=200)] | None = Field(
        default=None,
        description="Not supported: the SDK's `user` option picks the operating-system account that runs the "
        "agent, which is the server's decision. Any value is refused.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _readable_locs(cls, data: Any, handler: ModelWrapValidatorHandler[RunOptions]) -> RunOptions:
        try:
            return handler(data)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(exc.title, _cleaned(exc.errors())) from None

    @field_validator("setting_sources")
    @classmethod
    def _unique_sources(cls, value: list[SettingSource]) -> list[SettingSource]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a source")
        return value

    @field_validator("user")
    @classmethod
    def _no_os_user(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("not supported: it would choose the operating-system account that runs the agent; omit it")
        return value

    @model_validator(mode="after")
    def _check_cross_fields(self) -> RunOptions:
        errors: list[InitErrorDetails] = []

        def fail(loc: tuple[str | int, ...], message: str, value: Any) -> None:
            errors.append(InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value))

        if self.fallback_model is not None and self.fallback_model == self.model:
            fail(("fallback_model",), "must differ from model", self.fallback_model)
        servers = list(self.mcp_servers)
        lists: list[tuple[tuple[str | int, ...], list[str] | None, bool]] = [
            (("tools",), self.tools if isinstance(self.tools, list) else None, False),
            (("allowed_tools",), self.allowed_tools, True),
            (("disallowed_tools",), self.disallowed_tools, True),
        ]
        for name, agent in (self.agents or {}).items():
            lists.append((("agents", name, "tools"), agent.tools, True))
            lists.append((("agents", name, "disallowed_tools"), agent.disallowed_tools, True))
        for loc, names, rules in lists:
            for index, tool in enumerate(names or []):
                if problem := tool_name_problem(tool, servers, rules=rules):
                    fail((*loc, index), problem, tool)
        mcp_json = sum(len(spec.model_dump_json(exclude_none=True)) for spec in self.mcp_servers.values())
        if mcp_json > MAX_ARGUMENT_BYTES:
            fail(("mcp_servers",), f"longer than {MAX_ARGUMENT_BYTES} bytes as JSON", None)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


Prompt = (
    Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    | Annotated[list[ContentBlock], Field(min_length=1, max_length=100)]
)
Multitask = Literal["reject", "interrupt", "enqueue"]
OnDisconnect = Literal["continue", "cancel"]


# Fields that describe one turn, not the session's options (never kept in the session's options snapshot).
PER_TURN_FIELDS = frozenset({"prompt", "session_id", "multitask", "on_disconnect", "approval_timeout_seconds"})


class PromptRequest(RunOptions):
    """A prompt for a session, with the per-run options (``POST /sessions/{id}/resume``)."""

    prompt: Prompt = Field(description="The prompt: text, or a list of text and image blocks.")
    multitask: Multitask = Field(
        default="reject",
        description="When the session is already running a prompt: `reject` (409 SESSION_LOCKED with Retry-After), "
        "`interrupt` (stop the running one, then start) or `enqueue` (start when the running one ends).",
    )

    on_disconnect: OnDisconnect = Field(
        default="continue",
        description="`continue`: the run goes on when the client disconnects (rejoin with GET /sessions/{id}/stream); "
        "`cancel`: a disconnect stops it.",
    )

    approval_timeout_seconds: float | None = Field(
        default=None,
        ge=1,
        le=86400,
        description="How long a tool approval or a question waits for an answer before it counts as denied "
        "(default: the server's setting).",
    )

    def prompt_input(self) -> str | list[dict[str, Any]]:
        """The prompt as the Anthropic ``content`` of a user message (text, or a list of blocks)."""
        if isinstance(self.prompt, str):
            return self.prompt
        return [block.model_dump() for block in self.prompt]


class QueryRequest(PromptRequest):
    """``POST /api/v1/query``: a prompt that starts a run, in a new session or in ``session_id``."""

    session_id: Annotated[str, AfterValidator(_uuid)] | None = Field(
        default=None, description="An existing session to continue (UUID); omit to start a new session."
    )


class ForkRequest(RunOptions):
    """``POST /sessions/{id}/fork``: a new session branched from this one, optionally with a first prompt."""

    message_id: Annotated[str, AfterValidator(_uuid)] | None = Field(
        default=None, description="Branch after this message (a transcript uuid); omit to copy the whole session."
    )
    title: str | None = Field(default=None, max_length=500)
    prompt: Prompt | None = Field(default=None, description="A first prompt for the new session.")
