"""Run the real ``claude-agent-api`` command as a subprocess (a server on a free port, or a one-shot command)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

_POINTING_ELSEWHERE = ("DATABASE_URL", "REDIS_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
COMMAND = [sys.executable, "-m", "claude_agent_api.cli"]
PROCESSES: dict[str, subprocess.Popen[bytes]] = {}  # base URL -> the server process, while it runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment minus anything that would point the command at another database or model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAA_") and k not in _POINTING_ELSEWHERE}
    env.update(extra)
    return env


def run_command(args: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], env=clean_env(env), cwd=cwd, capture_output=True, text=True, timeout=120)


@contextmanager
def server_process(env: Mapping[str, str], cwd: Path, *, log_path: Path | None = None) -> Iterator[str]:
    """Start ``claude-agent-api serve`` on a free port; yield its base URL once /health answers."""
    port = free_port()
    log_file = (log_path or cwd / f"server-{port}.log").open("w")
    proc = subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port), "--host", "127.0.0.1"],
        env=clean_env(env),
        cwd=cwd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {(cwd / log_file.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become healthy within 60 s")
            time.sleep(0.1)
        PROCESSES[base] = proc
        yield base
    finally:
        PROCESSES.pop(base, None)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
