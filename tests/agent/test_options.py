"""The mapping from a query request to ``ClaudeAgentOptions``, and the checks that need the server's policy."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import AgentDefinition

from claude_agent_api.agent.options import DEFAULT_ENV_ALLOWLIST, RunContext, build_options, validate_paths
from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.workspace import CliDirs
from claude_agent_api.runs.schemas import QueryRequest

SESSION = "6d1b0c8e-4f7a-4e0b-9a57-2f3c1d0e9b8a"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspaces" / "key-1"
    path.mkdir(parents=True)
    return path.resolve()


@pytest.fixture
def ctx(tmp_path: Path, workspace: Path) -> RunContext:
    return RunContext(
        workspace=workspace,
        cli_dirs=CliDirs.for_key(tmp_path / "data", "key-1"),
        session_id=SESSION,
        resume=False,
        base_env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ANTHROPIC_API_KEY": "model-key", "IS_SANDBOX": "1"},
        env_allowlist=frozenset({"PROJECT_MODE"}),
        mcp_var_allowlist=frozenset({"GIT_TOKEN", "MCP_HOST", "UNSET_VAR"}),
        mcp_vars={"GIT_TOKEN": "tok-123", "MCP_HOST": "mcp.internal:8080"},
        stderr=None,
    )


def request(**fields: Any) -> QueryRequest:
    return QueryRequest.model_validate({"prompt": "hello", **fields})


def refused(req: QueryRequest, ctx: RunContext) -> list[Any]:
    with pytest.raises(RequestValidationFailed) as info:
        build_options(req, ctx)
    assert info.value.status == 422 and info.value.code == "VALIDATION_ERROR"
    return list(info.value.details["errors"][0]["loc"])


def test_a_maximal_request_maps_every_field(ctx: RunContext, workspace: Path) -> None:
    (workspace / "shared").mkdir()
    (workspace / "plugins" / "lint").mkdir(parents=True)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    lines: list[str] = []
    ctx = replace(ctx, stderr=lines.append)
    req = request(
        model="claude-sonnet-4-5",
        fallback_model="claude-haiku-4-5",
        system_prompt={"type": "preset", "preset": "claude_code", "append": "Be brief."},
        output_style="Explanatory",
        tools=["Read", "Write", "Bash", "mcp__git"],
        allowed_tools=["Read", "Bash(git diff:*)", "mcp__git__status"],
        disallowed_tools=["WebFetch", "Bash(rm:*)"],
        permission_mode="acceptEdits",
        max_turns=7,
        max_budget_usd=2.5,
        max_thinking_tokens=4096,
        effort="high",
        cwd="projects/app",
        add_dirs=["shared"],
        env={"CI": "1", "PROJECT_MODE": "test"},
        setting_sources=["project", "local"],
        skills=["pdf", "plugin:review"],
        agents={
            "reviewer": {
                "description": "Reviews diffs",
                "prompt": "You review.",
                "tools": ["Read", "Grep"],
                "disallowed_tools": ["Write"],
                "model": "inherit",
                "max_turns": 3,
                "background": False,
                "effort": "low",
                "permission_mode": "plan",
                "skills": ["pdf"],
            }
        },
        mcp_servers={
            "git": {"command": "git-mcp", "args": ["--token", "${GIT_TOKEN}"], "env": {"LEVEL": "${LEVEL_X:-}"}},
            "docs": {
                "type": "http",
                "url": "https://${MCP_HOST}/mcp",
                "headers": {"Authorization": "Bearer ${GIT_TOKEN}"},
            },
            "events": {"type": "sse", "url": "http://${UNSET_VAR:-localhost:1}/sse"},
        },
        plugins=[{"type": "local", "path": "plugins/lint"}],
        output_format={"type": "json_schema", "schema": schema},
        enable_file_checkpointing=True,
        include_partial_messages=True,
    )
    ctx = replace(ctx, mcp_var_allowlist=ctx.mcp_var_allowlist | {"LEVEL_X"})

    options = build_options(req, ctx)

    assert options.cwd == str(workspace / "projects" / "app")
    assert (workspace / "projects" / "app").is_dir()
    assert options.session_id == SESSION and options.resume is None
    assert options.model == "claude-sonnet-4-5"
    assert options.fallback_model == "claude-haiku-4-5"
    assert options.system_prompt == {"type": "preset", "preset": "claude_code", "append": "Be brief."}
    assert options.settings is not None and json.loads(options.settings) == {"outputStyle": "Explanatory"}
    assert options.tools == ["Read", "Write", "Bash", "mcp__git"]
    assert options.allowed_tools == ["Read", "Bash(git diff:*)", "mcp__git__status"]
    assert options.disallowed_tools == ["WebFetch", "Bash(rm:*)"]
    assert options.permission_mode == "acceptEdits"
    assert options.max_turns == 7
    assert options.max_budget_usd == 2.5
    assert options.max_thinking_tokens == 4096
    assert options.effort == "high"
    assert options.add_dirs == [str(workspace / "shared")]
    assert options.env["CI"] == "1" and options.env["PROJECT_MODE"] == "test"
    assert options.setting_sources == ["project", "local"]
    assert options.skills == ["pdf", "plugin:review"]
    assert options.agents == {
        "reviewer": AgentDefinition(
            description="Reviews diffs",
            prompt="You review.",
            tools=["Read", "Grep"],
            disallowedTools=["Write"],
            model="inherit",
            skills=["pdf"],
            maxTurns=3,
            background=False,
            effort="low",
            permissionMode="plan",
        )
    }
    assert options.mcp_servers == {
        "git": {"type": "stdio", "command": "git-mcp", "args": ["--token", "tok-123"], "env": {"LEVEL": ""}},
        "docs": {
            "type": "http",
            "url": "https://mcp.internal:8080/mcp",
            "headers": {"Authorization": "Bearer tok-123"},
        },
        "events": {"type": "sse", "url": "http://localhost:1/sse"},
    }
    assert options.plugins == [{"type": "local", "path": str(workspace / "plugins" / "lint")}]
    assert options.output_format == {"type": "json_schema", "schema": schema}
    assert options.enable_file_checkpointing is True
    assert options.include_partial_messages is True
    assert options.user is None
    assert options.stderr is not None
    options.stderr("boom")
    assert lines == ["boom"]
    assert options.extra_args == {"replay-user-messages": None}


def test_a_minimal_request_keeps_sdk_defaults_but_loads_no_settings(ctx: RunContext, workspace: Path) -> None:
    options = build_options(request(), ctx)
    assert options.cwd == str(workspace)
    assert options.setting_sources == []
    assert options.system_prompt is None and options.settings is None and options.tools is None
    assert options.model is None and options.permission_mode is None and options.max_turns is None
    assert options.agents is None and options.mcp_servers == {} and options.plugins == []
    assert options.skills is None and options.output_format is None
    assert options.extra_args == {"replay-user-messages": None}


def test_presets_without_extras(ctx: RunContext) -> None:
    options = build_options(
        request(
            system_prompt={"type": "preset", "preset": "claude_code"}, tools={"type": "preset", "preset": "claude_code"}
        ),
        ctx,
    )
    assert options.system_prompt == {"type": "preset", "preset": "claude_code"}
    assert options.tools == {"type": "preset", "preset": "claude_code"}
    assert build_options(request(system_prompt="You are terse.", skills="all"), ctx).system_prompt == "You are terse."


def test_resume_passes_the_session_as_resume(ctx: RunContext) -> None:
    options = build_options(request(session_id=SESSION), replace(ctx, resume=True))
    assert options.resume == SESSION and options.session_id is None


def test_default_cwd_is_created_inside_the_workspace(ctx: RunContext, workspace: Path) -> None:
    options = build_options(request(), replace(ctx, default_cwd=f"sessions/{SESSION}"))
    assert options.cwd == str(workspace / "sessions" / SESSION)
    assert (workspace / "sessions" / SESSION).is_dir()
    assert build_options(request(cwd="mine"), replace(ctx, default_cwd="other")).cwd == str(workspace / "mine")


def test_server_secrets_are_blanked_and_the_basics_kept(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db/app")
    monkeypatch.setenv("CAA_BOOTSTRAP_ADMIN_KEY", "admin-secret")
    monkeypatch.setenv("REDIS_URL", "redis://:secret@cache")
    monkeypatch.setenv("SOME_CLOUD_TOKEN", "tok")
    monkeypatch.setenv("TMPDIR", "/var/tmp/server")
    monkeypatch.setenv("LANG", "C.UTF-8")

    env = build_options(request(env={"CI": "true"}), ctx).env

    for name in ("DATABASE_URL", "CAA_BOOTSTRAP_ADMIN_KEY", "REDIS_URL", "SOME_CLOUD_TOKEN", "TMPDIR"):
        assert env[name] == "", name
    assert "PATH" not in env and "LANG" not in env  # passed through unchanged by the SDK
    assert os.environ["PATH"]
    assert env["CI"] == "true"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9" and env["ANTHROPIC_API_KEY"] == "model-key"
    assert env["HOME"] == str(ctx.cli_dirs.home)
    assert env["CLAUDE_CONFIG_DIR"] == str(ctx.cli_dirs.config)
    assert env["CLAUDE_CODE_TMPDIR"] == str(ctx.cli_dirs.tmp)
    assert {k for k, v in env.items() if v and k in os.environ} <= {
        "HOME",
        "CI",
        "CLAUDE_CONFIG_DIR",
        "CLAUDE_CODE_TMPDIR",
        *ctx.base_env,
    }


def test_the_sdk_passes_no_server_secret_to_the_cli(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the SDK builds as the process environment ({**os.environ, **options.env}) holds no secret."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db/app")
    env = build_options(request(), ctx).env
    process_env = {**os.environ, **env}
    assert process_env["DATABASE_URL"] == ""
    assert process_env["PATH"] == os.environ["PATH"]


def test_env_names_must_be_allow_listed(ctx: RunContext) -> None:
    assert refused(request(env={"MY_APP_SECRET": "x"}), ctx) == ["env", "MY_APP_SECRET"]
    assert build_options(request(env={"PROJECT_MODE": "a"}), ctx).env["PROJECT_MODE"] == "a"
    assert {"CI", "NO_COLOR"} <= DEFAULT_ENV_ALLOWLIST


def test_base_env_wins_over_the_request(ctx: RunContext) -> None:
    ctx = replace(ctx, env_allowlist=frozenset({"PROJECT_MODE"}), base_env={**ctx.base_env, "PROJECT_MODE": "server"})
    assert build_options(request(env={"PROJECT_MODE": "client"}), ctx).env["PROJECT_MODE"] == "server"


@pytest.mark.parametrize(
    ("server", "loc"),
    [
        ({"command": "${NOT_ALLOWED}"}, ["mcp_servers", "s", "command"]),
        ({"command": "x", "args": ["ok", "${UNSET_VAR}"]}, ["mcp_servers", "s", "args", 1]),
        ({"command": "x", "env": {"T": "${HOME:-/root}"}}, ["mcp_servers", "s", "env", "T"]),
        ({"type": "http", "url": "${MCP_HOST}/mcp"}, ["mcp_servers", "s", "url"]),
        ({"type": "sse", "url": "https://${UNSET_VAR}/"}, ["mcp_servers", "s", "url"]),
        (
            {"type": "http", "url": "https://x", "headers": {"X-Key": "${PATH}"}},
            ["mcp_servers", "s", "headers", "X-Key"],
        ),
    ],
)
def test_mcp_variables_must_be_allowed_and_set(ctx: RunContext, server: dict[str, Any], loc: list[Any]) -> None:
    assert refused(request(mcp_servers={"s": server}), ctx) == loc


def test_path_checks_name_the_field(ctx: RunContext, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "escape").symlink_to(outside)
    (workspace / "afile").write_text("x")
    (workspace / "real").mkdir()
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"cwd": "escape"}, ["cwd"]),
        ({"cwd": "escape/deeper"}, ["cwd"]),
        ({"cwd": "afile"}, ["cwd"]),
        ({"add_dirs": ["real", "escape"]}, ["add_dirs", 1]),
        ({"add_dirs": ["missing"]}, ["add_dirs", 0]),
        ({"add_dirs": ["afile"]}, ["add_dirs", 0]),
        ({"plugins": [{"type": "local", "path": "escape"}]}, ["plugins", 0, "path"]),
        ({"plugins": [{"type": "local", "path": "missing"}]}, ["plugins", 0, "path"]),
    ]
    for fields, loc in cases:
        with pytest.raises(RequestValidationFailed) as info:
            validate_paths(request(**fields), workspace)
        assert info.value.details["errors"][0]["loc"] == loc, fields
        assert refused(request(**fields), ctx) == loc


def test_symlink_escape_message_comes_from_the_workspace_jail(workspace: Path, tmp_path: Path) -> None:
    (workspace / "link").symlink_to("/etc")
    with pytest.raises(RequestValidationFailed) as info:
        validate_paths(request(cwd="link"), workspace)
    assert info.value.message == "cwd: is outside the workspace"


def test_nothing_is_created_when_the_request_is_refused(ctx: RunContext, workspace: Path) -> None:
    refused(request(cwd="new-dir", env={"NOT_ALLOWED_NAME": "x"}), ctx)
    refused(request(cwd="new-dir-2", add_dirs=["missing"]), ctx)
    assert not (workspace / "new-dir").exists() and not (workspace / "new-dir-2").exists()


def test_a_default_cwd_that_is_a_file_is_refused(ctx: RunContext, workspace: Path) -> None:
    (workspace / "taken").write_text("x")
    assert refused(request(), replace(ctx, default_cwd="taken/sub")) == ["cwd"]
