"""File checkpoints of sessions with ``enable_file_checkpointing``, and the CLI state that makes them usable on
any instance.

- :class:`Checkpoint` — one per user turn: the echoed user-message uuid (the handle ``rewind_files`` takes),
  the run, the prompt's first line and the files the turn changed (paths relative to the key's workspace).
- :class:`SessionFile` — the saved CLI state of a checkpointed session (the SDK will not combine a
  ``SessionStore`` with file checkpointing): the transcript JSONL and every ``file-history/<session>/*``
  backup, as blobs keyed by their path relative to the CLI config directory, with a digest so an unchanged
  file is not rewritten.
- :class:`SessionCut` — a conversation truncation recorded by a rewind and applied by the session's next
  turn (``resume_session_at``); ``resume_at`` None means "start over with an empty conversation".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from claude_agent_api.models.base import Base, utcnow


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    user_message_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prompt: Mapped[str] = mapped_column(String(500), default="")  # the prompt's first line
    files_changed: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (Index("ix_checkpoints_session_created", "session_id", "created_at"),)


class SessionFile(Base):
    __tablename__ = "session_files"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)  # relative to the CLI config directory
    size: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256, hex
    content: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SessionCut(Base):
    __tablename__ = "session_cuts"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String(64))
    resume_at: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
