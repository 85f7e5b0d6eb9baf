"""Transcript entries (the SDK's ``SessionStore`` contents) and session tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from claude_agent_api.models.base import Base, utcnow


class TranscriptEntry(Base):
    """One JSONL entry of a session's transcript (or of one of its subagents' transcripts, under ``subpath``).

    Ordered by ``id``. Entries with a ``uuid`` are stored once per (session, subpath, uuid); the rest (about a
    third: cost state, mode changes…) are appended as they come. Not tied to ``sessions`` by a foreign key: the
    SDK may write a fork's entries before the server has recorded the fork.
    """

    __tablename__ = "transcript_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(36))
    subpath: Mapped[str] = mapped_column(String(255), default="")
    project_key: Mapped[str] = mapped_column(String(1024), default="")
    uuid: Mapped[str | None] = mapped_column(String(64), default=None)
    entry_type: Mapped[str | None] = mapped_column(String(64), default=None)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_transcript_entries_session", "session_id", "subpath", "id"),
        Index(
            "uq_transcript_entries_uuid",
            "session_id",
            "subpath",
            "uuid",
            unique=True,
            sqlite_where=text("uuid IS NOT NULL"),
            postgresql_where=text("uuid IS NOT NULL"),
        ),
    )


class SessionTag(Base):
    __tablename__ = "session_tags"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_session_tags_tag", "tag", "session_id"),)
