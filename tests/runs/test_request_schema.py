"""The query request schema: every bad field is refused with a ``loc`` naming it; good requests keep their values."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from claude_agent_api.runs.request_rules import BUILTIN_TOOLS, expand_vars
from claude_agent_api.runs.schemas import QueryRequest

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
SESSION = "0b6f3c1e-2f1a-4c53-9d6e-1c2b3a4d5e6f"


def image(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def parse(**fields: Any) -> QueryRequest:
    return QueryRequest.model_validate({"prompt": "hello", **fields})


def error_locs(**fields: Any) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as info:
        parse(**fields)
    return [tuple(err["loc"]) for err in info.value.errors()]


def agent(**extra: Any) -> dict[str, Any]:
    return {"description": "reviews code", "prompt": "You review code.", **extra}


def schema_of(schema: Any) -> dict[str, Any]:
    return {"output_format": {"type": "json_schema", "schema": schema}}


def http_server(**extra: Any) -> dict[str, Any]:
    return {"mcp_servers": {"s": {"type": "http", "url": "http://x", **extra}}}


INVALID: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("unknown top-level field", {"temperature": 0.2}, ("temperature",)),
    ("empty prompt", {"prompt": ""}, ("prompt",)),
    ("prompt too long", {"prompt": "x" * 500_001}, ("prompt",)),
    ("empty block list", {"prompt": []}, ("prompt",)),
    ("unknown block type", {"prompt": [{"type": "audio", "text": "x"}]}, ("prompt", 0)),
    ("image not base64", {"prompt": [image("not base64!!")]}, ("prompt", 0, "source", "data")),
    ("image bad padding", {"prompt": [image("iVBORw0KGgo")]}, ("prompt", 0, "source", "data")),
    ("image too large", {"prompt": [image("A" * (7 * 1024 * 1024))]}, ("prompt", 0, "source", "data")),
    ("image wrong media type", {"prompt": [image(base64.b64encode(PNG).decode(), "image/jpeg")]}, ("prompt", 0)),
    ("image media type", {"prompt": [image(base64.b64encode(PNG).decode(), "image/bmp")]}, ("prompt", 0)),
    ("image url source", {"prompt": [{"type": "image", "source": {"type": "url", "url": "http://x"}}]}, ("prompt", 0)),
    ("session id not a uuid", {"session_id": "abc"}, ("session_id",)),
    ("model pattern", {"model": "claude opus"}, ("model",)),
    ("model option-like", {"model": "--dangerously-skip-permissions"}, ("model",)),
    ("fallback equals model", {"model": "claude-x", "fallback_model": "claude-x"}, ("fallback_model",)),
    ("system prompt type", {"system_prompt": {"type": "custom", "prompt": "x"}}, ("system_prompt",)),
    ("system preset name", {"system_prompt": {"type": "preset", "preset": "other"}}, ("system_prompt", "preset")),
    ("system prompt too big", {"system_prompt": "x" * 100_001}, ("system_prompt",)),
    ("output style", {"output_style": "../evil"}, ("output_style",)),
    ("tools preset name", {"tools": {"type": "preset", "preset": "all"}}, ("tools", "preset")),
    ("permission mode auto", {"permission_mode": "auto"}, ("permission_mode",)),
    ("max_turns zero", {"max_turns": 0}, ("max_turns",)),
    ("max_turns big", {"max_turns": 501}, ("max_turns",)),
    ("budget zero", {"max_budget_usd": 0}, ("max_budget_usd",)),
    ("budget big", {"max_budget_usd": 1000.01}, ("max_budget_usd",)),
    ("thinking small", {"max_thinking_tokens": 1023}, ("max_thinking_tokens",)),
    ("thinking big", {"max_thinking_tokens": 128_001}, ("max_thinking_tokens",)),
    ("effort", {"effort": "extreme"}, ("effort",)),
    ("cwd dot-dot", {"cwd": "../other-key"}, ("cwd",)),
    ("cwd nested dot-dot", {"cwd": "a/../../b"}, ("cwd",)),
    ("cwd absolute", {"cwd": "/etc"}, ("cwd",)),
    ("cwd NUL", {"cwd": "a\x00b"}, ("cwd",)),
    ("cwd empty", {"cwd": ""}, ("cwd",)),
    ("add_dirs dot-dot", {"add_dirs": ["ok", ".."]}, ("add_dirs", 1)),
    ("add_dirs absolute", {"add_dirs": ["/etc"]}, ("add_dirs", 0)),
    ("add_dirs too many", {"add_dirs": [f"d{i}" for i in range(21)]}, ("add_dirs",)),
    ("plugin path escape", {"plugins": [{"type": "local", "path": "/usr/lib"}]}, ("plugins", 0, "path")),
    ("plugin type", {"plugins": [{"type": "npm", "path": "p"}]}, ("plugins", 0, "type")),
    ("env secret ANTHROPIC_", {"env": {"ANTHROPIC_API_KEY": "x"}}, ("env", "ANTHROPIC_API_KEY")),
    ("env secret CLAUDE_", {"env": {"CLAUDE_CONFIG_DIR": "/tmp"}}, ("env", "CLAUDE_CONFIG_DIR")),
    ("env secret CAA_", {"env": {"CAA_BOOTSTRAP_ADMIN_KEY": "x"}}, ("env", "CAA_BOOTSTRAP_ADMIN_KEY")),
    ("env secret AWS_", {"env": {"AWS_SECRET_ACCESS_KEY": "x"}}, ("env", "AWS_SECRET_ACCESS_KEY")),
    ("env LD_PRELOAD", {"env": {"LD_PRELOAD": "/x.so"}}, ("env", "LD_PRELOAD")),
    ("env DYLD_", {"env": {"DYLD_INSERT_LIBRARIES": "/x"}}, ("env", "DYLD_INSERT_LIBRARIES")),
    ("env PATH", {"env": {"PATH": "/evil"}}, ("env", "PATH")),
    ("env HOME", {"env": {"HOME": "/root"}}, ("env", "HOME")),
    ("env SHELL", {"env": {"SHELL": "/bin/evil"}}, ("env", "SHELL")),
    ("env DATABASE_URL", {"env": {"DATABASE_URL": "x"}}, ("env", "DATABASE_URL")),
    ("env REDIS_URL", {"env": {"REDIS_URL": "x"}}, ("env", "REDIS_URL")),
    ("env PYTHONPATH", {"env": {"PYTHONPATH": "x"}}, ("env", "PYTHONPATH")),
    ("env NODE_OPTIONS", {"env": {"NODE_OPTIONS": "--require x"}}, ("env", "NODE_OPTIONS")),
    ("env proxy", {"env": {"HTTPS_PROXY": "http://attacker"}}, ("env", "HTTPS_PROXY")),
    ("env lower case", {"env": {"my_var": "x"}}, ("env", "my_var")),
    ("env leading digit", {"env": {"1VAR": "x"}}, ("env", "1VAR")),
    ("env dash", {"env": {"MY-VAR": "x"}}, ("env", "MY-VAR")),
    ("env too long name", {"env": {"A" * 65: "x"}}, ("env", "A" * 65)),
    ("env NUL value", {"env": {"CI": "a\x00"}}, ("env", "CI")),
    ("env long value", {"env": {"CI": "x" * 4097}}, ("env", "CI")),
    ("setting source", {"setting_sources": ["global"]}, ("setting_sources", 0)),
    ("setting source twice", {"setting_sources": ["user", "user"]}, ("setting_sources",)),
    ("skills string", {"skills": "everything"}, ("skills",)),
    ("skill name", {"skills": ["/commit"]}, ("skills", 0)),
    ("skill wildcard", {"skills": ["*"]}, ("skills", 0)),
    ("agent name", {"agents": {"Reviewer": agent()}}, ("agents", "Reviewer")),
    ("agent missing prompt", {"agents": {"rev": {"description": "d"}}}, ("agents", "rev", "prompt")),
    ("agent unknown field", {"agents": {"rev": agent(maxTurns=3)}}, ("agents", "rev", "maxTurns")),
    ("agent max turns", {"agents": {"rev": agent(max_turns=0)}}, ("agents", "rev", "max_turns")),
    ("agent permission mode", {"agents": {"rev": agent(permission_mode="auto")}}, ("agents", "rev", "permission_mode")),
    ("agent bad tool", {"agents": {"rev": agent(tools=["Read", "Nope"])}}, ("agents", "rev", "tools", 1)),
    ("agent disallowed", {"agents": {"r": agent(disallowed_tools=["mcp__x"])}}, ("agents", "r", "disallowed_tools", 0)),
    ("mcp server name", {"mcp_servers": {"my server": {"command": "x"}}}, ("mcp_servers", "my server")),
    ("mcp no type no command", {"mcp_servers": {"s": {"url": "http://x"}}}, ("mcp_servers", "s")),
    ("mcp unknown type", {"mcp_servers": {"s": {"type": "ws", "url": "ws://x"}}}, ("mcp_servers", "s")),
    ("mcp ftp url", {"mcp_servers": {"s": {"type": "http", "url": "ftp://x"}}}, ("mcp_servers", "s", "url")),
    ("mcp file url", {"mcp_servers": {"s": {"type": "sse", "url": "file:///etc/passwd"}}}, ("mcp_servers", "s", "url")),
    ("mcp stdio with url", {"mcp_servers": {"s": {"command": "x", "url": "http://x"}}}, ("mcp_servers", "s", "url")),
    ("mcp bad var syntax", {"mcp_servers": {"s": {"command": "${HOME"}}}, ("mcp_servers", "s", "command")),
    ("mcp bad var name", {"mcp_servers": {"s": {"command": "x", "args": ["${1X}"]}}}, ("mcp_servers", "s", "args", 0)),
    ("mcp header newline", http_server(headers={"A": "b\r\nC: d"}), ("mcp_servers", "s", "headers", "A")),
    ("mcp header name", http_server(headers={"A B": "c"}), ("mcp_servers", "s", "headers", "A B")),
    ("mcp env name", {"mcp_servers": {"s": {"command": "x", "env": {"A-B": "c"}}}}, ("mcp_servers", "s", "env", "A-B")),
    ("output format type", {"output_format": {"type": "json", "schema": {}}}, ("output_format", "type")),
    ("output schema invalid", schema_of({"type": "nope"}), ("output_format", "schema")),
    ("output schema bad keyword", schema_of({"type": "object", "required": "a"}), ("output_format", "schema")),
    ("output schema not a dict", schema_of([1]), ("output_format", "schema")),
    ("output schema not object", schema_of({"type": "string"}), ("output_format", "schema")),
    ("output schema no type", schema_of({"properties": {}}), ("output_format", "schema")),
    ("output schema $schema", schema_of({"$schema": 1, "type": "object"}), ("output_format", "schema")),
    ("output schema missing", {"output_format": {"type": "json_schema"}}, ("output_format", "schema")),
    ("user is the OS account", {"user": "root"}, ("user",)),
    ("checkpointing not bool", {"enable_file_checkpointing": "maybe"}, ("enable_file_checkpointing",)),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "loc"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_field_is_refused_naming_it(fields: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    locs = error_locs(**fields)
    assert any(found[: len(loc)] == loc for found in locs), locs


BAD_TOOL_NAMES = [
    "Nope",
    "bash",
    "Read ",
    "",
    "Bash()",
    "Bash(  )",
    "Bash(git diff",
    "Bash(ls)),Write(",
    "Bash(ls),Write",
    "Nope(x)",
    "mcp__unknown__x",
    "mcp__unknown",
    "mcp__",
    "mcp__srvx__tool",
    "mcp__srv__",
    "mcp__srv__bad tool",
    "Read(\n)",
    "x" * 600,
]


@pytest.mark.parametrize("field", ["allowed_tools", "disallowed_tools", "tools"])
@pytest.mark.parametrize("name", BAD_TOOL_NAMES)
def test_bad_tool_names_are_refused(field: str, name: str) -> None:
    locs = error_locs(**{field: ["Read", name]}, mcp_servers={"srv": {"command": "srv-bin"}})
    assert locs == [(field, 1)]


GOOD_RULES = [
    "Read",
    "Agent",
    "Task",
    "Bash(git diff:*)",
    "Read(./src/**)",
    "WebFetch(domain:example.com)",
    "Bash(echo (nested))",
    "Edit(/docs/**)",
    "mcp__srv",
    "mcp__srv__tool",
    "mcp__srv__*",
    "mcp__my-srv__do_thing",
]


@pytest.mark.parametrize("field", ["allowed_tools", "disallowed_tools"])
@pytest.mark.parametrize("name", GOOD_RULES)
def test_tool_names_and_rules_are_accepted(field: str, name: str) -> None:
    request = parse(**{field: [name]}, mcp_servers={"srv": {"command": "a"}, "my-srv": {"command": "b"}})
    assert getattr(request, field) == [name]


def test_mcp_names_need_the_server_in_this_request() -> None:
    assert error_locs(allowed_tools=["mcp__srv__x"]) == [("allowed_tools", 0)]
    assert parse(allowed_tools=["mcp__srv__x"], mcp_servers={"srv": {"command": "c"}}).allowed_tools == ["mcp__srv__x"]


def test_base_tool_set_takes_names_not_rules() -> None:
    assert parse(tools=sorted(BUILTIN_TOOLS)).tools == sorted(BUILTIN_TOOLS)
    assert parse(tools=[]).tools == []
    assert error_locs(tools=["Bash(git:*)"]) == [("tools", 0)]


def test_agent_tools_are_checked_against_this_request() -> None:
    request = parse(
        agents={"rev": agent(tools=["Read", "mcp__srv"], disallowed_tools=["Bash(rm:*)"])},
        mcp_servers={"srv": {"command": "c"}},
    )
    assert request.agents is not None
    assert request.agents["rev"].tools == ["Read", "mcp__srv"]


def test_builtin_tools_hold_what_the_cli_reports() -> None:
    assert {"Agent", "Task", "Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "TodoWrite"} <= BUILTIN_TOOLS


def test_image_and_text_blocks_are_kept_for_the_prompt() -> None:
    data = base64.b64encode(PNG).decode()
    request = parse(prompt=[{"type": "text", "text": "what is this?"}, image(data)])
    assert request.prompt_input() == [{"type": "text", "text": "what is this?"}, image(data)]
    assert parse(prompt="plain").prompt_input() == "plain"


@pytest.mark.parametrize(
    ("media_type", "raw"),
    [
        ("image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 8),
        ("image/gif", b"GIF89a" + b"\x00" * 8),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 "),
    ],
)
def test_each_image_type_is_accepted(media_type: str, raw: bytes) -> None:
    parse(prompt=[image(base64.b64encode(raw).decode(), media_type)])


def test_image_of_exactly_five_megabytes_is_accepted() -> None:
    raw = PNG + b"\x00" * (5 * 1024 * 1024 - len(PNG))
    parse(prompt=[image(base64.b64encode(raw).decode())])
    locs = error_locs(prompt=[image(base64.b64encode(raw + b"\x00").decode())])
    assert ("prompt", 0, "source", "data") in locs


def test_session_id_is_normalised() -> None:
    assert parse(session_id=SESSION.upper()).session_id == SESSION


def test_stdio_is_the_default_mcp_type_and_vars_are_kept_unexpanded() -> None:
    request = parse(mcp_servers={"git": {"command": "${TOOLS_DIR:-/opt}/git-mcp", "args": ["--repo", "${REPO}"]}})
    server = request.mcp_servers["git"]
    assert server.type == "stdio"
    assert server.model_dump(exclude_none=True) == {
        "type": "stdio",
        "command": "${TOOLS_DIR:-/opt}/git-mcp",
        "args": ["--repo", "${REPO}"],
    }


def test_output_format_round_trips_with_its_schema_key() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    request = parse(output_format={"type": "json_schema", "schema": schema})
    dumped = request.model_dump(mode="json", exclude_none=True)
    assert dumped["output_format"] == {"type": "json_schema", "schema": schema}
    assert QueryRequest.model_validate(dumped) == request


def test_output_schema_error_carries_the_jsonschema_message() -> None:
    with pytest.raises(ValidationError) as info:
        parse(output_format={"type": "json_schema", "schema": {"type": "nope"}})
    assert "not a valid JSON Schema" in info.value.errors()[0]["msg"]


def test_defaults_load_no_settings_and_no_tools_change() -> None:
    request = parse()
    assert request.setting_sources == []
    assert request.allowed_tools == [] and request.disallowed_tools == [] and request.tools is None
    assert request.env == {} and request.mcp_servers == {} and request.agents is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${A}", "1"),
        ("x-${A}-${B:-two}", "x-1-two"),
        ("${C:-}", ""),
        ("no vars $A {A}", "no vars $A {A}"),
    ],
)
def test_expand_vars(value: str, expected: str) -> None:
    assert expand_vars(value, {"A", "B", "C"}, {"A": "1"}) == expected


@pytest.mark.parametrize(("value", "message"), [("${B}", "not set"), ("${Z:-d}", "not allowed")])
def test_expand_vars_refuses(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_vars(value, {"A", "B"}, {"A": "1"})
