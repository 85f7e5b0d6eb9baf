"""From a validated query request to ``ClaudeAgentOptions``: every request option maps to one SDK field.

The request models (``runs/schemas.py``) check what the request alone can prove. This module adds what needs
the server's policy, and raises :class:`RequestValidationFailed` (422, naming the field) before anything runs:

- paths — ``cwd``, ``add_dirs.N``, ``plugins.N.path`` — resolve inside the key's workspace, symlinks included
  (:func:`validate_paths`); ``add_dirs`` and plugin directories must exist; ``cwd`` is created when missing
  and defaults to ``RunContext.default_cwd`` (or the workspace itself);
- ``env`` names are in :data:`DEFAULT_ENV_ALLOWLIST` or the caller's extra allow-list;
- ``${VAR}`` / ``${VAR:-default}`` in MCP server settings name allow-listed variables that are set (or have a
  default), and URLs are still http(s) once expanded.

The agent's environment. The SDK starts the CLI with ``{**os.environ, **options.env}``: whatever is in the
server's own environment reaches the agent unless ``options.env`` overrides it. So :func:`agent_env` sets every
variable of ``os.environ`` to ``""`` except :data:`ENV_PASS_THROUGH` (PATH, locale, TZ, TERM, USER, LOGNAME,
SHELL) and the few the SDK manages itself; that blanking is how the server's secrets (``DATABASE_URL``,
``REDIS_URL``, ``CAA_*``, cloud credentials…) never reach the agent or its tools. ``TMPDIR`` is blanked too: the
CLI gets ``CLAUDE_CODE_TMPDIR``. On top come the request's allow-listed ``env``, then ``RunContext.base_env``
(model endpoint and process hygiene), then the private ``CliDirs`` (``HOME``, ``CLAUDE_CONFIG_DIR``,
``CLAUDE_CODE_TMPDIR``), so a request can never override what the server sets.

Defaults that differ from the SDK's: ``setting_sources`` is ``[]`` unless the request names sources, so the
server host's user settings, CLAUDE.md and skills never leak into a run (the SDK would load user and project
settings when skills are requested). ``extra_args`` always carries ``replay-user-messages`` so the prompt comes
back as a ``UserMessage`` with a uuid (the handle of a file checkpoint). The SDK's ``user`` option (the
operating-system account the CLI runs as) is never taken from a request: the schema refuses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions, McpServerConfig, SdkPluginConfig
from claude_agent_sdk.types import (
    McpHttpServerConfig,
    McpSSEServerConfig,
    McpStdioServerConfig,
    SystemPromptPreset,
    ToolsPreset,
)

from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.workspace import CliDirs, PathEscape, resolve_inside
from claude_agent_api.runs.request_parts import AgentSpec, McpHttpSpec, McpSseSpec, McpStdioSpec
from claude_agent_api.runs.request_rules import expand_vars
from claude_agent_api.runs.schemas import RunOptions

# Harmless names a request may set without the operator allow-listing them (Settings can add more).
DEFAULT_ENV_ALLOWLIST: frozenset[str] = frozenset(
    {
        "CI",
        "DEBUG",
        "NODE_ENV",
        "NO_COLOR",
        "FORCE_COLOR",
        "COLUMNS",
        "LINES",
        "TZ",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "MCP_TIMEOUT",
        "MCP_TOOL_TIMEOUT",
    }
)

# Variables of the server's environment that reach the agent unchanged.
ENV_PASS_THROUGH: frozenset[str] = frozenset(
    {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER", "LOGNAME", "SHELL"}
)
# Set or removed by the SDK itself when it starts the CLI; blanking them would change the SDK's behaviour.
_SDK_MANAGED_ENV = frozenset(
    {"CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_AGENT_SDK_VERSION", "CLAUDE_CODE_SDK_READS_SESSION_STATE"}
)


@dataclass(frozen=True)
class RunContext:
    """What the server decides about a run: where it works, its session id, its environment and policies."""

    workspace: Path  # the key's workspace directory (exists)
    cli_dirs: CliDirs  # config/home/tmp of the CLI (exist, 0700)
    session_id: str  # the server-chosen session id (a UUID)
    resume: bool  # True when continuing an existing session
    base_env: Mapping[str, str]  # model endpoint + process hygiene, built by the caller
    env_allowlist: frozenset[str]  # extra allowed env names, on top of DEFAULT_ENV_ALLOWLIST
    mcp_var_allowlist: frozenset[str]  # variables ${VAR} may name in MCP server settings
    mcp_vars: Mapping[str, str]  # their values (already allow-listed by the caller)
    stderr: Callable[[str], None] | None
    default_cwd: str | None = None  # relative directory used when the request has no cwd


Loc = tuple[str | int, ...]


def _inside(workspace: Path, value: str, loc: Loc) -> Path:
    try:
        return resolve_inside(workspace, value)
    except PathEscape as exc:
        raise RequestValidationFailed.for_field(loc, str(exc)) from None


def _existing_dir(workspace: Path, value: str, loc: Loc) -> Path:
    path = _inside(workspace, value, loc)
    if not path.is_dir():
        raise RequestValidationFailed.for_field(loc, "is not an existing directory in the workspace")
    return path


def validate_paths(request: RunOptions, workspace: Path) -> None:
    """Prove that ``cwd``, ``add_dirs`` and plugin paths stay inside ``workspace``; the last two must exist."""
    if request.cwd is not None:
        cwd = _inside(workspace, request.cwd, ("cwd",))
        if cwd.exists() and not cwd.is_dir():
            raise RequestValidationFailed.for_field("cwd", "is not a directory")
    for index, directory in enumerate(request.add_dirs):
        _existing_dir(workspace, directory, ("add_dirs", index))
    for index, plugin in enumerate(request.plugins):
        _existing_dir(workspace, plugin.path, ("plugins", index, "path"))


def validate_env(request: RunOptions, ctx: RunContext) -> None:
    allowed = DEFAULT_ENV_ALLOWLIST | ctx.env_allowlist
    for name in request.env:
        if name not in allowed:
            raise RequestValidationFailed.for_field(("env", name), f"{name!r} is not in the environment allow-list")


def agent_env(request: RunOptions, ctx: RunContext) -> dict[str, str]:
    """The CLI's environment overrides (see the module docstring for why the server's own is blanked)."""
    blanked = {name: "" for name in os.environ if name not in ENV_PASS_THROUGH and name not in _SDK_MANAGED_ENV}
    dirs = {
        "HOME": str(ctx.cli_dirs.home),
        "CLAUDE_CONFIG_DIR": str(ctx.cli_dirs.config),
        "CLAUDE_CODE_TMPDIR": str(ctx.cli_dirs.tmp),
    }
    return {**blanked, **request.env, **ctx.base_env, **dirs}


def _expand(value: str, loc: Loc, ctx: RunContext) -> str:
    try:
        return expand_vars(value, ctx.mcp_var_allowlist, ctx.mcp_vars)
    except ValueError as exc:
        raise RequestValidationFailed.for_field(loc, str(exc)) from None


def _expand_url(value: str, loc: Loc, ctx: RunContext) -> str:
    url = _expand(value, loc, ctx)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise RequestValidationFailed.for_field(loc, "must be an http:// or https:// URL once expanded")
    return url


def _expand_headers(headers: Mapping[str, str], loc: Loc, ctx: RunContext) -> dict[str, str]:
    out = {}
    for key, value in headers.items():
        expanded = _expand(value, (*loc, key), ctx)
        if any(c in expanded for c in "\r\n\x00"):
            raise RequestValidationFailed.for_field((*loc, key), "must not contain line breaks once expanded")
        out[key] = expanded
    return out


def mcp_servers(request: RunOptions, ctx: RunContext) -> dict[str, McpServerConfig]:
    """The request's MCP servers as SDK configs, with ``${VAR}`` references expanded."""
    servers: dict[str, McpServerConfig] = {}
    for name, spec in request.mcp_servers.items():
        loc: Loc = ("mcp_servers", name)
        if isinstance(spec, McpStdioSpec):
            stdio: McpStdioServerConfig = {"type": "stdio", "command": _expand(spec.command, (*loc, "command"), ctx)}
            if spec.args is not None:
                stdio["args"] = [_expand(arg, (*loc, "args", i), ctx) for i, arg in enumerate(spec.args)]
            if spec.env is not None:
                stdio["env"] = {k: _expand(v, (*loc, "env", k), ctx) for k, v in spec.env.items()}
            servers[name] = stdio
        else:
            assert isinstance(spec, McpSseSpec | McpHttpSpec)
            url = _expand_url(spec.url, (*loc, "url"), ctx)
            headers = _expand_headers(spec.headers, (*loc, "headers"), ctx) if spec.headers is not None else None
            if isinstance(spec, McpSseSpec):
                sse: McpSSEServerConfig = {"type": "sse", "url": url}
                if headers is not None:
                    sse["headers"] = headers
                servers[name] = sse
            else:
                http: McpHttpServerConfig = {"type": "http", "url": url}
                if headers is not None:
                    http["headers"] = headers
                servers[name] = http
    return servers


def _agent(spec: AgentSpec) -> AgentDefinition:
    return AgentDefinition(
        description=spec.description,
        prompt=spec.prompt,
        tools=spec.tools,
        disallowedTools=spec.disallowed_tools,
        model=spec.model,
        skills=spec.skills,
        maxTurns=spec.max_turns,
        background=spec.background,
        effort=spec.effort,
        permissionMode=spec.permission_mode,
    )


def _system_prompt(request: RunOptions) -> str | SystemPromptPreset | None:
    value = request.system_prompt
    if value is None or isinstance(value, str):
        return value
    preset: SystemPromptPreset = {"type": "preset", "preset": "claude_code"}
    if value.append is not None:
        preset["append"] = value.append
    return preset


def _tools(request: RunOptions) -> list[str] | ToolsPreset | None:
    if request.tools is None or isinstance(request.tools, list):
        return request.tools
    return {"type": "preset", "preset": "claude_code"}


def _cwd(request: RunOptions, ctx: RunContext) -> Path:
    relative = request.cwd if request.cwd is not None else ctx.default_cwd
    if relative is None:
        return ctx.workspace.resolve()
    cwd = _inside(ctx.workspace, relative, ("cwd",))
    try:
        cwd.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequestValidationFailed.for_field("cwd", f"cannot be created: {exc.strerror}") from None
    return _inside(ctx.workspace, str(cwd), ("cwd",))


def build_options(request: RunOptions, ctx: RunContext) -> ClaudeAgentOptions:
    """Check the request against the server's policy, then map it; nothing is created unless it is valid."""
    validate_paths(request, ctx.workspace)
    validate_env(request, ctx)
    servers = mcp_servers(request, ctx)
    plugins: list[SdkPluginConfig] = [
        {"type": "local", "path": str(_inside(ctx.workspace, plugin.path, ("plugins", index, "path")))}
        for index, plugin in enumerate(request.plugins)
    ]
    add_dirs: list[str | Path] = [
        str(_inside(ctx.workspace, directory, ("add_dirs", index))) for index, directory in enumerate(request.add_dirs)
    ]
    output_format = (
        {"type": "json_schema", "schema": request.output_format.json_schema} if request.output_format else None
    )
    return ClaudeAgentOptions(
        cwd=str(_cwd(request, ctx)),
        session_id=None if ctx.resume else ctx.session_id,
        resume=ctx.session_id if ctx.resume else None,
        model=request.model,
        fallback_model=request.fallback_model,
        system_prompt=_system_prompt(request),
        settings=json.dumps({"outputStyle": request.output_style}) if request.output_style else None,
        tools=_tools(request),
        allowed_tools=list(request.allowed_tools),
        disallowed_tools=list(request.disallowed_tools),
        permission_mode=request.permission_mode,
        max_turns=request.max_turns,
        max_budget_usd=request.max_budget_usd,
        max_thinking_tokens=request.max_thinking_tokens,
        effort=request.effort,
        add_dirs=add_dirs,
        env=agent_env(request, ctx),
        setting_sources=list(request.setting_sources),
        skills=request.skills if request.skills == "all" or request.skills is None else list(request.skills),
        agents={name: _agent(spec) for name, spec in request.agents.items()} if request.agents else None,
        mcp_servers=servers,
        plugins=plugins,
        output_format=output_format,
        enable_file_checkpointing=request.enable_file_checkpointing,
        include_partial_messages=request.include_partial_messages,
        stderr=ctx.stderr,
        extra_args={"replay-user-messages": None},
    )
