"""Sessions (one conversation, owned by one key) and runs (one prompt being answered inside a session)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from claude_agent_api.models.base import Base, IdMixin, TimestampMixin, utcnow


class SessionStatus(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    REQUIRES_ACTION = "requires_action"
    FAILED = "failed"
    EXPIRED = "expired"
    DELETED = "deleted"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    REQUIRES_ACTION = "requires_action"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    MAX_TURNS = "max_turns"
    BUDGET_EXCEEDED = "budget_exceeded"

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.REQUIRES_ACTION)


class AgentSession(TimestampMixin, Base):
    """The id is the SDK's session id: the server chooses it and passes ``session_id=`` to the SDK."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(24), default=SessionStatus.IDLE.value)
    model: Mapped[str | None] = mapped_column(String(100), default=None)
    cwd: Mapped[str] = mapped_column(Text, default="")  # relative to the key's workspace
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    parent_session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), default=None)
    num_turns: Mapped[int] = mapped_column(Integer, default=0)
    num_runs: Mapped[int] = mapped_column(Integer, default=0)
    total_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_creation_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    last_run_id: Mapped[str | None] = mapped_column(String(36), default=None)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    expired_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_sessions_owner_activity", "owner_key_id", "last_activity_at", "id"),
        Index("ix_sessions_owner_status", "owner_key_id", "status"),
        Index("ix_sessions_parent", "parent_session_id"),
    )


class Run(IdMixin, TimestampMixin, Base):
    __tablename__ = "runs"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    owner_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(24), default=RunStatus.QUEUED.value)
    prompt_preview: Mapped[str] = mapped_column(String(500), default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    instance_id: Mapped[str | None] = mapped_column(String(64), default=None)
    stop_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    num_turns: Mapped[int] = mapped_column(Integer, default=0)
    total_cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_runs_session_created", "session_id", "created_at"),
        Index("ix_runs_owner_status", "owner_key_id", "status"),
    )


class RunEvent(Base):
    """A run's events, saved when the run ends, so a finished run's stream never depends on the coordination
    backend's retention (or on Redis being up)."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
