"""Workspace paths: the jail for ``cwd``, ``add_dirs`` and plugin paths.

Every API key owns one directory under the workspace root. A client names paths *relative to its workspace*;
:func:`resolve_inside` refuses anything that would land outside it — ``..`` segments, absolute paths elsewhere,
NUL bytes, and symlinks that point out (the check is done on the fully resolved path, so a link created by a
previous agent turn cannot be used to escape either).

The CLI's own state (config dir, HOME, temp dir) is per instance and per key, under the data directory, never
inside a workspace the agent can write to.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_MAX_PATH = 1024


class PathEscape(ValueError):
    """A path that is not allowed: outside the workspace, malformed, or containing NUL bytes."""


def key_workspace(root: Path, key_id: str) -> Path:
    return root / key_id


def resolve_inside(base: Path, value: str) -> Path:
    """Resolve ``value`` (relative to ``base``, or absolute but inside it) and prove it stays inside ``base``."""
    if "\x00" in value:
        raise PathEscape("contains a NUL byte")
    if len(value) > _MAX_PATH:
        raise PathEscape(f"longer than {_MAX_PATH} characters")
    base = base.resolve()
    candidate = Path(value)
    if not candidate.is_absolute():
        if ".." in PurePosixPath(value).parts:
            raise PathEscape("must not contain '..'")
        candidate = base / candidate
    resolved = Path(os.path.realpath(candidate))
    if resolved != base and base not in resolved.parents:
        raise PathEscape("is outside the workspace")
    return resolved


@dataclass(frozen=True)
class CliDirs:
    """Private directories of the agent CLI for one key on this instance."""

    config: Path
    home: Path
    tmp: Path

    @classmethod
    def for_key(cls, data_dir: Path, key_id: str) -> CliDirs:
        base = data_dir.resolve() / "cli" / key_id
        dirs = cls(config=base / "config", home=base / "home", tmp=base / "tmp")
        for path in (base, dirs.config, dirs.home, dirs.tmp):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.chmod(0o700)
        return dirs


def forget_local_files(data_dir: Path, key_id: str, session_id: str) -> None:
    """Remove this instance's CLI copies of a session: its transcripts (and subagent transcripts) and its file
    backups. They are caches of what SQL holds; a deleted session leaves none behind."""
    config = data_dir.resolve() / "cli" / key_id / "config"
    for path in [*config.glob(f"projects/*/{session_id}.jsonl"), *config.glob(f"projects/*/{session_id}")]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    shutil.rmtree(config / "file-history" / session_id, ignore_errors=True)
