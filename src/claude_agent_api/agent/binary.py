"""The Claude Code CLI that ships inside the ``claude-agent-sdk`` wheel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import claude_agent_sdk


def bundled_cli_path() -> Path:
    return Path(claude_agent_sdk.__file__).resolve().parent / "_bundled" / "claude"


async def cli_version(limit_seconds: float = 30.0) -> str:
    """Start the bundled CLI with ``--version``; raise with its output when it does not start."""
    path = bundled_cli_path()
    if not path.exists():
        raise FileNotFoundError(f"bundled Claude CLI not found at {path}")
    proc = await asyncio.create_subprocess_exec(
        str(path), "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise RuntimeError(f"exit code {proc.returncode}: {text[-500:]}")
    return text
