"""The naming rules of a query request: tool names, environment variable names, ``${VAR}`` references.

Pure functions, shared by the request models (which check what can be checked without the server's policy)
and by the options mapping in ``agent/options.py`` (which checks the policy: allow-lists, variable values).

Tool names (``tools``, ``allowed_tools``, ``disallowed_tools`` and the same fields of ``agents``) are one of:

- a built-in tool of the bundled CLI, exactly as in :data:`BUILTIN_TOOLS`;
- ``mcp__<server>`` or ``mcp__<server>__<tool>``, where ``<server>`` is a key of the request's ``mcp_servers``;
- a permission rule ``<BuiltinTool>(<specifier>)`` — ``Bash(git diff:*)``, ``Read(./src/**)``,
  ``WebFetch(domain:example.com)`` — with a non-empty specifier and balanced parentheses. Rules restrict or
  grant uses of a tool; they mean nothing in the base tool set (``tools``), where the CLI silently drops them,
  so there they are refused.

Environment variable names follow :data:`ENV_NAME_PATTERN` and are never one of the server's own or the
process-control names (:func:`env_name_problem`), whatever the allow-list says.

``${VAR}`` and ``${VAR:-default}`` in MCP server settings are expanded by :func:`expand_vars` from values the
server chooses; a request can only name variables, never read the server's environment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

# Every name the bundled CLI (2.1.330) reported in its init message's ``tools`` list, measured offline
# against the scripted model: the default set; ``AskUserQuestion``, ``EnterPlanMode``, ``ExitPlanMode`` (offered
# when a permission callback is set); ``StructuredOutput`` (with ``output_format``); ``Glob``, ``Grep`` and the
# ``Task*`` list tools (present when asked for by name); ``TodoWrite`` (with CLAUDE_CODE_ENABLE_TODO_TOOLS=1, as
# the runner sets it). ``Agent`` is the name the model uses for ``Task``.
BUILTIN_TOOLS: frozenset[str] = frozenset(
    {
        "Agent",
        "AskUserQuestion",
        "Bash",
        "CronCreate",
        "CronDelete",
        "CronList",
        "Edit",
        "EnterPlanMode",
        "EnterWorktree",
        "ExitPlanMode",
        "ExitWorktree",
        "Glob",
        "Grep",
        "ListAgents",
        "Monitor",
        "NotebookEdit",
        "Read",
        "ReportFindings",
        "ScheduleWakeup",
        "SendMessage",
        "Skill",
        "StructuredOutput",
        "Task",
        "TaskCreate",
        "TaskGet",
        "TaskList",
        "TaskStop",
        "TaskUpdate",
        "TodoWrite",
        "ToolSearch",
        "WebFetch",
        "WebSearch",
        "Workflow",
        "Write",
    }
)

MAX_TOOL_NAME = 512
_MCP_TOOL_PART = re.compile(r"[A-Za-z0-9_.*-]{1,128}")
_RULE = re.compile(r"([A-Za-z]+)\((.*)\)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _mcp_name_ok(name: str, servers: Collection[str]) -> bool:
    rest = name.removeprefix("mcp__")
    for server in servers:
        if rest == server:
            return True
        if rest.startswith(server + "__") and _MCP_TOOL_PART.fullmatch(rest[len(server) + 2 :]):
            return True
    return False


def tool_name_problem(name: str, mcp_servers: Collection[str], *, rules: bool = True) -> str | None:
    """Why ``name`` is not a valid tool name or permission rule, or ``None`` when it is."""
    if name in BUILTIN_TOOLS:
        return None
    if len(name) > MAX_TOOL_NAME:
        return f"longer than {MAX_TOOL_NAME} characters"
    if _CONTROL.search(name):
        return f"{name!r} contains control characters"
    if name.startswith("mcp__"):
        if _mcp_name_ok(name, mcp_servers):
            return None
        return f"{name!r} does not name a server of this request's mcp_servers (mcp__<server> or mcp__<server>__<tool>)"
    match = _RULE.fullmatch(name)
    if match is None:
        return f"{name!r} is not a built-in tool, an mcp__<server>[__<tool>] name or a rule like 'Bash(git diff:*)'"
    tool, specifier = match.groups()
    if tool not in BUILTIN_TOOLS:
        return f"{name!r}: {tool!r} is not a built-in tool"
    if not rules:
        return f"{name!r} is a permission rule; the base tool set takes tool names only"
    if not specifier.strip():
        return f"{name!r} has an empty specifier"
    if not _balanced(specifier):
        return f"{name!r} has unbalanced parentheses"
    return None


# --- environment variables -------------------------------------------------------------------------------

ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,63}$"
MAX_ENV_VALUE = 4096
FORBIDDEN_ENV_PREFIXES: tuple[str, ...] = ("ANTHROPIC_", "CLAUDE_", "CAA_", "AWS_", "LD_", "DYLD_")
FORBIDDEN_ENV_NAMES: frozenset[str] = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "DATABASE_URL",
        "REDIS_URL",
        "PYTHONPATH",
        "NODE_OPTIONS",
        # The CLI's own process hygiene, set by the server.
        "TMPDIR",
        "IS_SANDBOX",
        # Code run at interpreter or shell start.
        "BASH_ENV",
        "ENV",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        # Where the CLI's traffic goes and whom it trusts: the model endpoint's key travels on that path.
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)


def env_name_problem(name: str) -> str | None:
    """Why a request may never set ``name``, or ``None`` (the allow-list is checked separately)."""
    if not re.fullmatch(ENV_NAME_PATTERN, name):
        return f"{name!r} is not a variable name like MY_VAR (upper case letters, digits, '_'; at most 64)"
    if name in FORBIDDEN_ENV_NAMES or name.startswith(FORBIDDEN_ENV_PREFIXES):
        return f"{name!r} is reserved for the server and can never be set by a request"
    return None


# --- ${VAR} references ------------------------------------------------------------------------------------

VAR_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,127})(?::-([^}]*))?\}")


def var_syntax_problem(value: str) -> str | None:
    """Why ``value`` holds a malformed ``${...}`` reference, or ``None``."""
    if "\x00" in value:
        return "contains a NUL byte"
    if "${" in VAR_REFERENCE.sub("", value):
        return "has a malformed variable reference; use ${NAME} or ${NAME:-default}"
    return None


def expand_vars(value: str, allowlist: Collection[str], values: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}``; raise ``ValueError`` for a variable that is not allowed or not set."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name not in allowlist:
            raise ValueError(f"variable {name!r} is not allowed in MCP server settings")
        if name in values:
            return values[name]
        if default is None:
            raise ValueError(f"variable {name!r} is not set and has no default (use ${{{name}:-default}})")
        return default

    return VAR_REFERENCE.sub(replace, value)
