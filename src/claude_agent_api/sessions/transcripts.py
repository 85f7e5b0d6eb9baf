"""All SQL about transcript entries: what the SDK's ``SessionStore`` mirrors into ``transcript_entries``.

A transcript is the ordered list of JSONL entries of one session (``subpath=""``) or of one of its subagents
(``subpath="subagents/agent-<id>"``). Rows are ordered by their autoincrement ``id``; each row also keeps the
``project_key`` it was written under, but reads are keyed by **session id** (and subpath) only: the CLI derives
the project key from the cwd, and a session resumed under another cwd must still find its history.

Idempotency: an entry with a ``uuid`` is stored at most once per (session, subpath) — the SDK retries failed
batches, which may overlap a partial write. On SQLite and PostgreSQL this is ``INSERT … ON CONFLICT DO NOTHING``
against the partial unique index ``uq_transcript_entries_uuid`` (safe under concurrent writers); on any other
dialect the uuids already present are selected first. Entries without a uuid (cost state, mode markers…) are
always appended.

Like every repository, this one never commits: the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.models import TranscriptEntry
from claude_agent_api.models.base import utcnow

MAIN = ""
"""The subpath of a session's main transcript."""

_CHUNK = 500  # rows per INSERT round trip (well under both engines' bound-parameter limits)
_UUID_MAX = 64  # column width; longer "uuids" are not ids the CLI writes, so they are stored without dedup
_TYPE_MAX = 64

Entry = dict[str, Any]


def _uuid_of(entry: Mapping[str, Any]) -> str | None:
    value = entry.get("uuid")
    return value if isinstance(value, str) and 0 < len(value) <= _UUID_MAX else None


def _type_of(entry: Mapping[str, Any]) -> str | None:
    value = entry.get("type")
    return value[:_TYPE_MAX] if isinstance(value, str) else None


class TranscriptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self, session_id: str, subpath: str, project_key: str, entries: Sequence[Mapping[str, Any]]
    ) -> int:
        """Append ``entries`` in order; an entry whose ``uuid`` is already stored (or repeated earlier in the
        batch) is skipped. Returns the number of rows sent for insertion (an upper bound under races)."""
        now = utcnow()
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for entry in entries:
            uuid = _uuid_of(entry)
            if uuid is not None:
                if uuid in seen:
                    continue
                seen.add(uuid)
            rows.append(
                {
                    "session_id": session_id,
                    "subpath": subpath,
                    "project_key": project_key,
                    "uuid": uuid,
                    "entry_type": _type_of(entry),
                    "entry": dict(entry),
                    "created_at": now,
                }
            )
        if not rows:
            return 0
        statement = self._insert_ignoring_duplicates()
        if statement is None:  # a dialect without ON CONFLICT: filter out what is already there
            existing = await self._existing_uuids(session_id, subpath, seen)
            rows = [row for row in rows if row["uuid"] is None or row["uuid"] not in existing]
            statement = insert(TranscriptEntry)
        for start in range(0, len(rows), _CHUNK):
            await self.session.execute(statement, rows[start : start + _CHUNK])
        return len(rows)

    def _insert_ignoring_duplicates(self) -> Insert | None:
        name = self.session.get_bind().dialect.name
        if name == "postgresql":
            return postgresql.insert(TranscriptEntry).on_conflict_do_nothing()
        if name == "sqlite":
            return sqlite.insert(TranscriptEntry).on_conflict_do_nothing()
        return None

    async def _existing_uuids(self, session_id: str, subpath: str, uuids: Collection[str]) -> set[str]:
        if not uuids:
            return set()
        query = select(TranscriptEntry.uuid).where(
            TranscriptEntry.session_id == session_id,
            TranscriptEntry.subpath == subpath,
            TranscriptEntry.uuid.in_(list(uuids)),
        )
        return {u for u in (await self.session.scalars(query)) if u is not None}

    async def load(self, session_id: str, subpath: str = MAIN) -> list[Entry] | None:
        """The entries of one transcript in append order, or None when nothing was ever stored under it."""
        query = (
            select(TranscriptEntry.entry)
            .where(TranscriptEntry.session_id == session_id, TranscriptEntry.subpath == subpath)
            .order_by(TranscriptEntry.id)
        )
        entries = list(await self.session.scalars(query))
        return entries or None

    async def page(
        self, session_id: str, *, after_id: int, limit: int, entry_types: Collection[str]
    ) -> list[tuple[int, Entry]]:
        """Up to ``limit`` main-transcript entries of the given types with ``id > after_id``, as (id, entry)."""
        query = (
            select(TranscriptEntry.id, TranscriptEntry.entry)
            .where(
                TranscriptEntry.session_id == session_id,
                TranscriptEntry.subpath == MAIN,
                TranscriptEntry.id > after_id,
                TranscriptEntry.entry_type.in_(list(entry_types)),
            )
            .order_by(TranscriptEntry.id)
            .limit(limit)
        )
        return [(row_id, entry) for row_id, entry in (await self.session.execute(query)).tuples()]

    async def list_subpaths(self, session_id: str) -> list[str]:
        """The subagent transcripts of a session (every subpath but the main one), sorted."""
        query = (
            select(TranscriptEntry.subpath)
            .where(TranscriptEntry.session_id == session_id, TranscriptEntry.subpath != MAIN)
            .distinct()
            .order_by(TranscriptEntry.subpath)
        )
        return list(await self.session.scalars(query))

    async def list_sessions(self, project_key: str | None = None) -> list[tuple[str, datetime]]:
        """Sessions with a main transcript (written under ``project_key`` when given), with the time of their
        latest main-transcript write."""
        query = (
            select(TranscriptEntry.session_id, func.max(TranscriptEntry.created_at))
            .where(TranscriptEntry.subpath == MAIN)
            .group_by(TranscriptEntry.session_id)
            .order_by(TranscriptEntry.session_id)
        )
        if project_key is not None:
            query = query.where(TranscriptEntry.project_key == project_key)
        return [(sid, mtime) for sid, mtime in (await self.session.execute(query)).tuples()]

    async def delete(self, session_id: str, subpath: str | None = None) -> int:
        """Delete one transcript (``subpath`` given, ``""`` = the main one) or everything of the session
        (``None``). Returns the number of rows deleted."""
        statement = delete(TranscriptEntry).where(TranscriptEntry.session_id == session_id)
        if subpath is not None:
            statement = statement.where(TranscriptEntry.subpath == subpath)
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def count(self, session_id: str, subpath: str | None = None) -> int:
        """Rows stored for the session (all subpaths when ``subpath`` is None)."""
        query = select(func.count()).select_from(TranscriptEntry).where(TranscriptEntry.session_id == session_id)
        if subpath is not None:
            query = query.where(TranscriptEntry.subpath == subpath)
        return int(await self.session.scalar(query) or 0)
