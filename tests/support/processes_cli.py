"""Find the agent CLI processes that belong to one data directory (via /proc), to prove none is left behind."""

from __future__ import annotations

from pathlib import Path


def cli_processes(data_dir: Path, command: str | None = None) -> list[int]:
    """PIDs of live processes whose environment points ``CLAUDE_CONFIG_DIR`` inside ``data_dir`` (the agent CLIs
    and the tool processes they started), optionally only those whose command line contains ``command``."""
    marker = f"CLAUDE_CONFIG_DIR={data_dir.resolve()}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in environ and ") Z " not in stat and (command is None or command in cmdline):
            pids.append(int(proc.name))
    return pids
