"""The server-side context of a run: the key's workspace and CLI directories, the process environment, and
the allow-lists from settings."""

from __future__ import annotations

import os
from pathlib import Path

from claude_agent_api.agent.options import RunContext
from claude_agent_api.agent.runner import base_env
from claude_agent_api.auth.service import Principal
from claude_agent_api.config import Settings
from claude_agent_api.kit.workspace import CliDirs
from claude_agent_api.models import AgentSession


def run_context(
    settings: Settings, principal: Principal, workspace: Path, session_id: str, existing: AgentSession | None
) -> RunContext:
    dirs = CliDirs.for_key(settings.data_dir, principal.key_id)
    return RunContext(
        workspace=workspace,
        cli_dirs=dirs,
        session_id=session_id,
        resume=existing is not None,
        base_env=base_env(settings, dirs),
        env_allowlist=frozenset(settings.agent_env_allowlist),
        mcp_var_allowlist=frozenset(settings.mcp_env_allowlist),
        mcp_vars={k: v for k in settings.mcp_env_allowlist if (v := os.environ.get(k)) is not None},
        stderr=None,
        default_cwd=existing.cwd if existing else f"sessions/{session_id}",
    )
