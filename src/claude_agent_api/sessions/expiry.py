"""Idle expiry: a session unused for ``session_idle_expiry_seconds`` is gone (410), and a sweep clears its data.

Expiry is decided by the clock, not by the sweep: a session whose ``last_activity_at`` is older than the idle
limit answers 410 ``SESSION_EXPIRED`` at once (:func:`ensure_not_expired`, used by the session routes and by the
run manager before a session is continued). The sweep (:func:`sweep_expired`, run every
``expiry_sweep_interval_seconds`` by :func:`run_sweeper`) then makes it durable: it marks the row ``expired``
with the instant it expired (``last_activity_at`` + the limit, so the 410 body never changes), deletes the
transcript entries and runs, and removes the session's own workspace directory. The row (and its tags) stays,
so later requests keep getting 410 rather than 404. Only ``idle`` and ``failed`` sessions expire: a running
session, or one waiting for a human, is not idle.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from claude_agent_api.config import Settings
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.kit.workspace import key_workspace
from claude_agent_api.models import AgentSession, SessionStatus
from claude_agent_api.models.base import utcnow
from claude_agent_api.sessions.errors import SessionExpired
from claude_agent_api.sessions.repository import EXPIRABLE_STATUSES, SessionRepository

if TYPE_CHECKING:
    from claude_agent_api.state import AppState

log = structlog.get_logger("claude_agent_api.sessions.expiry")

SWEEP_BATCH = 500


def idle_limit(settings: Settings) -> timedelta | None:
    seconds = settings.session_idle_expiry_seconds
    return None if seconds is None else timedelta(seconds=seconds)


def expiry_cutoff(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Sessions idle since at most this instant are expired (None when idle expiry is off)."""
    limit = idle_limit(settings)
    return None if limit is None else (now or utcnow()) - limit


def expires_at(session: AgentSession, settings: Settings) -> datetime | None:
    """When the session expires (or expired); None when it cannot expire in its current state."""
    if session.status == SessionStatus.EXPIRED.value:
        return session.expired_at or session.last_activity_at
    limit = idle_limit(settings)
    if limit is None or session.status not in EXPIRABLE_STATUSES:
        return None
    return session.last_activity_at + limit


def is_expired(session: AgentSession, settings: Settings, now: datetime | None = None) -> bool:
    if session.status == SessionStatus.EXPIRED.value:
        return True
    at = expires_at(session, settings)
    return at is not None and at <= (now or utcnow())


def ensure_not_expired(session: AgentSession, settings: Settings, *, now: datetime | None = None) -> None:
    """Raise :class:`SessionExpired` (410, ``details.expired_at``) when the session has expired."""
    if is_expired(session, settings, now):
        at = expires_at(session, settings)
        raise SessionExpired(details={"expired_at": at.isoformat() if at else None})


def default_workdir(settings: Settings, owner_key_id: str, session_id: str, cwd: str) -> Path | None:
    """The session's own directory (``sessions/<id>`` in its key's workspace), or None when the client chose
    the working directory: a directory a client named may be shared by other sessions and is never removed."""
    if cwd != f"sessions/{session_id}":
        return None
    return key_workspace(settings.effective_workspace_root, owner_key_id) / cwd


def _remove_tree(path: Path) -> None:
    if path.is_symlink():  # an agent may have replaced its directory by a link: remove the link, not its target
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


async def remove_default_workdir(settings: Settings, owner_key_id: str, session_id: str, cwd: str) -> bool:
    """Remove the session's own workspace directory if it has one; True when something was removed."""
    path = default_workdir(settings, owner_key_id, session_id, cwd)
    if path is None or not (path.is_dir() or path.is_symlink()):
        return False
    try:
        await asyncio.to_thread(_remove_tree, path)
    except OSError as exc:
        log.warning("sessions.workdir_remove_failed", session_id=session_id, error=str(exc))
        return False
    return True


async def sweep_expired(session_factory: SessionFactory, settings: Settings, *, now: datetime | None = None) -> int:
    """Mark every expired session, delete its transcript and runs and its own workspace directory.

    Works in batches of :data:`SWEEP_BATCH`, one transaction each; on PostgreSQL the rows are locked with
    ``SKIP LOCKED`` so several instances can sweep at once. Returns how many sessions were expired.
    """
    limit = idle_limit(settings)
    if limit is None:
        return 0
    cutoff = (now or utcnow()) - limit
    total = 0
    while True:
        async with unit_of_work(session_factory) as db:
            repo = SessionRepository(db)
            batch = await repo.lock_expirable(cutoff, SWEEP_BATCH)
            await repo.mark_expired({s.id: s.last_activity_at + limit for s in batch})
            await repo.purge_contents([s.id for s in batch])
        for item in batch:
            await remove_default_workdir(settings, item.owner_key_id, item.id, item.cwd)
        total += len(batch)
        if len(batch) < SWEEP_BATCH:
            break
    if total:
        log.info("sessions.expired", count=total)
    return total


async def run_sweeper(state: AppState) -> None:
    """Sweep every ``expiry_sweep_interval_seconds`` until cancelled; a failed sweep is logged, never fatal.

    Does nothing (and returns) when idle expiry is off.
    """
    settings = state.settings
    if settings.session_idle_expiry_seconds is None:
        return
    while True:
        try:
            await sweep_expired(state.session_factory, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sessions.sweep_failed")
        await asyncio.sleep(settings.expiry_sweep_interval_seconds)
