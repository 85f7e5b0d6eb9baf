"""File checkpoints: the CLI state they need, saved to SQL after each turn and restored before a cold start.

The SDK will not combine a ``SessionStore`` with ``enable_file_checkpointing``, so a checkpointed session's CLI
state lives only in the CLI config directory of the instance that ran it: the transcript
(``projects/<project>/<session>.jsonl``, plus ``projects/<project>/<session>/…`` for subagents) and the file
backups (``file-history/<session>/<hash>@vN``). After every turn :func:`after_turn` copies those files into
``session_files`` (only the ones whose SHA-256 changed) and records a :class:`Checkpoint` for the turn; before a
cold start :func:`prepare` writes them back into this instance's config directory, so a session resumes and
rewinds on any instance and after a restart. The config directories are caches.

A rewind (:func:`rewind_files`) starts a CLI with ``resume=<session>`` and calls the SDK's ``rewind_files``.
Truncating the conversation is recorded as a :class:`SessionCut` and applied by the next turn: ``resume`` with
``resume_session_at=<last transcript entry before the checkpoint's prompt>`` and *no* ``fork_session`` — the
CLI then continues the same session id on the new branch (the later turns drop out of the conversation; their
entries stay in the file). A cut at the first prompt has no entry to resume at: the next turn starts the
session over (same id, ``session_id=`` instead of ``resume=``) after its saved transcript and backups are
dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog
from claude_agent_sdk import ClaudeAgentOptions
from sqlalchemy import delete, select

from claude_agent_api.agent.client import AgentClient, Emit, Prompt
from claude_agent_api.agent.translate import Event
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.models import Checkpoint, SessionCut, SessionFile
from claude_agent_api.models.base import utcnow

log = structlog.get_logger("claude_agent_api.agent.checkpoints")
EDIT_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path", "NotebookEdit": "notebook_path"}
NO_CHECKPOINT = "No file checkpoint found"


class CheckpointMissing(LookupError):
    """The CLI has no file checkpoint for that user message."""


class RewindError(RuntimeError):
    """The CLI could not rewind (it says why)."""


def config_dir(options: ClaudeAgentOptions) -> Path:
    return Path(options.env["CLAUDE_CONFIG_DIR"])


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_files(config: Path, session_id: str) -> dict[str, Path]:
    """The session's CLI state on this instance, by path relative to the config directory."""
    found: list[Path] = [*config.glob(f"projects/*/{session_id}.jsonl")]
    for root in [*config.glob(f"projects/*/{session_id}"), config / "file-history" / session_id]:
        if root.is_dir():
            found.extend(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return {str(p.relative_to(config)): p for p in found}


def _safe_target(config: Path, relative: str) -> Path:
    target = (config / relative).resolve()
    if config.resolve() not in target.parents:
        raise ValueError(f"saved path escapes the config directory: {relative!r}")
    return target


async def save_state(factory: SessionFactory, session_id: str, config: Path) -> int:
    """Copy the session's transcript and backups into SQL; returns how many files were (re)written."""
    files = {rel: path.read_bytes() for rel, path in local_files(config, session_id).items()}
    written = 0
    async with unit_of_work(factory) as db:
        rows = await db.execute(
            select(SessionFile.path, SessionFile.digest).where(SessionFile.session_id == session_id)
        )
        saved: dict[str, str] = dict(rows.tuples().all())
        for rel, data in files.items():
            digest = _digest(data)
            if saved.get(rel) == digest:
                continue
            written += 1
            row = await db.get(SessionFile, (session_id, rel))
            if row is None:
                db.add(SessionFile(session_id=session_id, path=rel, size=len(data), digest=digest, content=data))
            else:
                row.size, row.digest, row.content = len(data), digest, data
        gone = [rel for rel in saved if rel not in files]
        if gone:
            await db.execute(
                delete(SessionFile).where(SessionFile.session_id == session_id, SessionFile.path.in_(gone))
            )
    return written


async def restore_state(factory: SessionFactory, session_id: str, config: Path) -> int:
    """Write the session's saved files into ``config`` (those that differ), and remove the session's local files
    SQL does not hold; returns how many files were written. Nothing saved: the local state is left alone."""
    async with unit_of_work(factory) as db:
        rows = await db.execute(
            select(SessionFile.path, SessionFile.digest).where(SessionFile.session_id == session_id)
        )
        saved: dict[str, str] = dict(rows.tuples().all())
        if not saved:
            return 0
        local = local_files(config, session_id)
        stale = [rel for rel, digest in saved.items() if rel not in local or _digest(local[rel].read_bytes()) != digest]
        contents: dict[str, bytes] = {}
        if stale:
            query = select(SessionFile.path, SessionFile.content).where(
                SessionFile.session_id == session_id, SessionFile.path.in_(stale)
            )
            contents = {path: bytes(content) for path, content in (await db.execute(query)).all()}
    for rel, data in contents.items():
        target = _safe_target(config, rel)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_bytes(data)
    for rel, path in local.items():
        if rel not in saved:
            path.unlink(missing_ok=True)
    return len(contents)


def _forget_local(config: Path, session_id: str) -> None:
    for path in local_files(config, session_id).values():
        path.unlink(missing_ok=True)


class TurnTracker:
    """Wraps a turn's ``emit`` to see its events: the echoed prompt's uuid and the files edit tools touched."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.user_message_uuid: str | None = None
        self.paths: list[str] = []
        self.cut_applied = False

    async def emit(self, event: Event) -> None:
        self.observe(event)
        await self._emit(event)

    def observe(self, event: Event) -> None:
        if event.get("type") != "message":
            return
        blocks: list[dict[str, Any]] = event.get("content") or []
        if event.get("role") == "user" and self.user_message_uuid is None and event.get("uuid"):
            is_prompt = event.get("parent_tool_use_id") is None and all(b.get("type") != "tool_result" for b in blocks)
            if is_prompt:
                self.user_message_uuid = str(event["uuid"])
        elif event.get("role") == "assistant":
            for block in blocks:
                key = EDIT_TOOLS.get(str(block.get("name"))) if block.get("type") == "tool_use" else None
                path = (block.get("input") or {}).get(key) if key else None
                if isinstance(path, str) and path not in self.paths:
                    self.paths.append(path)


def first_line(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        text = prompt
    else:
        text = next((str(b.get("text", "")) for b in prompt if b.get("type") == "text"), "[image]")
    return (text.strip().splitlines() or [""])[0][:500]


def workspace_relative(paths: Iterable[str], workspace: Path, cwd: str | None) -> list[str]:
    """Paths the agent named (absolute, or relative to its cwd) relative to the key's workspace; others dropped."""
    root = workspace.resolve()
    out: list[str] = []
    for raw in paths:
        path = Path(raw) if Path(raw).is_absolute() else Path(cwd or root) / raw
        resolved = Path(path).resolve()
        if root in resolved.parents and (rel := str(resolved.relative_to(root))) not in out:
            out.append(rel)
    return out


async def prepare(
    factory: SessionFactory, session_id: str, options: ClaudeAgentOptions, tracker: TurnTracker | None = None
) -> ClaudeAgentOptions:
    """Before a cold start: restore the saved CLI state and apply a pending conversation cut."""
    config = config_dir(options)
    async with unit_of_work(factory) as db:
        cut = await db.get(SessionCut, session_id)
        has_cut, resume_at = cut is not None, cut.resume_at if cut is not None else None
        fresh = has_cut and resume_at is None and bool(options.resume)
        if fresh:
            await db.execute(delete(SessionFile).where(SessionFile.session_id == session_id))
    if fresh:
        _forget_local(config, session_id)
        options = dataclasses.replace(options, resume=None, session_id=session_id, resume_session_at=None)
    else:
        restored = await restore_state(factory, session_id, config)
        log.info("checkpoints.restored", session_id=session_id, files=restored)
        if resume_at and options.resume:
            options = dataclasses.replace(options, resume_session_at=resume_at, fork_session=False)
    if tracker is not None:
        tracker.cut_applied = has_cut and (fresh or bool(options.resume_session_at))
    return options


async def after_turn(
    factory: SessionFactory,
    *,
    session_id: str,
    run_id: str,
    options: ClaudeAgentOptions,
    workspace: Path,
    prompt: Prompt,
    tracker: TurnTracker,
) -> None:
    """Save the CLI state and record the turn's checkpoint. Never raises: a run does not fail for this."""
    try:
        written = await save_state(factory, session_id, config_dir(options))
        async with unit_of_work(factory) as db:
            if tracker.cut_applied:
                await db.execute(delete(SessionCut).where(SessionCut.session_id == session_id))
            uuid = tracker.user_message_uuid
            if uuid is not None and await db.get(Checkpoint, (session_id, uuid)) is None:
                cwd = str(options.cwd) if options.cwd else None
                db.add(
                    Checkpoint(
                        session_id=session_id,
                        user_message_uuid=uuid,
                        run_id=run_id,
                        created_at=utcnow(),
                        prompt=first_line(prompt),
                        files_changed=workspace_relative(tracker.paths, workspace, cwd),
                    )
                )
        log.info("checkpoints.saved", session_id=session_id, files=written, checkpoint=tracker.user_message_uuid)
    except Exception:
        log.exception("checkpoints.save_failed", session_id=session_id, run_id=run_id)


def cut_point(config: Path, session_id: str, user_message_uuid: str) -> tuple[bool, str | None]:
    """Where a conversation cut before ``user_message_uuid`` resumes: (found, the entry just before it, or None
    when the prompt was the conversation's first)."""
    for path in config.glob(f"projects/*/{session_id}.jsonl"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("uuid") == user_message_uuid:
                parent = entry.get("parentUuid")
                return True, parent if isinstance(parent, str) else None
    return False, None


async def rewind_files(options: ClaudeAgentOptions, session_id: str, user_message_uuid: str) -> None:
    """Restore the workspace files to their state at the checkpoint, from a CLI resumed on this instance."""
    options = dataclasses.replace(
        options, resume=session_id, session_id=None, fork_session=False, enable_file_checkpointing=True
    )
    agent = AgentClient(options, session_id=session_id, fingerprint="rewind")
    try:
        await agent.start()
        await agent.call(lambda client: client.rewind_files(user_message_uuid))
    except Exception as exc:
        message = str(exc)
        if NO_CHECKPOINT in message:
            raise CheckpointMissing(message) from exc
        tail = "\n".join(line.rstrip() for line in agent.stderr if line.strip())[-1000:]
        raise RewindError(message or tail or type(exc).__name__) from exc
    finally:
        await agent.close()
