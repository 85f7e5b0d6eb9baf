"""``claude-agent-api doctor``: is this installation able to serve? One line per check, fail → exit 1."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from claude_agent_api.agent.binary import cli_version
from claude_agent_api.config import Settings
from claude_agent_api.kit.coordination import create_coordination
from claude_agent_api.kit.database import create_engine
from claude_agent_api.kit.migrations import alembic_config

_SHARED_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "ceph",
    "fuse.cephfs",
    "glusterfs",
    "fuse.glusterfs",
    "lustre",
    "efs",
    "fuse.sshfs",
    "9p",
    "virtiofs",
    "gpfs",
    "beegfs",
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def _check_database(settings: Settings) -> CheckResult:
    url = settings.effective_database_url
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            current = await asyncio.wait_for(conn.run_sync(_current_revision), 10)
    except Exception as exc:
        return CheckResult("database", "fail", f"{engine.dialect.name}: cannot connect ({type(exc).__name__}: {exc})")
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current == head:
        return CheckResult("database", "ok", f"{engine.dialect.name}, schema at {head}")
    action = "applied at start" if settings.auto_migrate else "run `claude-agent-api db upgrade`"
    return CheckResult("database", "warn", f"{engine.dialect.name}, schema at {current}, head {head} ({action})")


async def _check_coordination(settings: Settings) -> CheckResult:
    backend = create_coordination(settings.redis_url, namespace=settings.namespace)
    try:
        await asyncio.wait_for(backend.ping(), 5)
    except Exception as exc:
        return CheckResult("coordination", "fail", f"{backend.name}: unreachable ({type(exc).__name__})")
    finally:
        await backend.close()
    return CheckResult("coordination", "ok", backend.name)


async def _check_cli() -> CheckResult:
    try:
        version = await cli_version()
    except Exception as exc:
        return CheckResult("claude cli", "fail", f"does not start: {exc}")
    return CheckResult("claude cli", "ok", version)


def _check_model(settings: Settings) -> CheckResult:
    if settings.anthropic_api_key is None and settings.anthropic_base_url is None:
        return CheckResult(
            "model endpoint", "fail", "set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for another endpoint)"
        )
    where = settings.anthropic_base_url or "https://api.anthropic.com (default)"
    key = "key set" if settings.anthropic_api_key is not None else "no key"
    return CheckResult("model endpoint", "ok", f"{where}, {key}")


def _filesystem_type(path: Path) -> str | None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best: tuple[int, str] | None = None
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        inside = resolved == parts[1] or resolved.startswith(parts[1].rstrip("/") + "/")
        if inside and (best is None or len(parts[1]) > best[0]):
            best = (len(parts[1]), parts[2])
    return best[1] if best else None


def _check_workspace(settings: Settings) -> CheckResult:
    root = settings.effective_workspace_root
    fstype = _filesystem_type(root) or "unknown"
    if settings.redis_url and not settings.is_sqlite and fstype not in _SHARED_FILESYSTEMS:
        return CheckResult(
            "workspace root",
            "warn",
            f"{root} is on a local filesystem ({fstype}); with several instances the agents' files must be on a "
            "shared filesystem (NFS, EFS, CephFS…)",
        )
    return CheckResult("workspace root", "ok", f"{root} ({fstype})")


async def run_checks(settings: Settings) -> list[CheckResult]:
    results = [CheckResult("configuration", "ok", "settings valid")]
    database, coordination, cli = await asyncio.gather(
        _check_database(settings), _check_coordination(settings), _check_cli()
    )
    return [*results, database, coordination, cli, _check_model(settings), _check_workspace(settings)]
