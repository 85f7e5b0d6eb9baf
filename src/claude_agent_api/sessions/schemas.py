"""The wire shapes of the sessions API: list query and page (with its opaque cursor), one session, the update."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from claude_agent_api.models import AgentSession, Run, SessionStatus

MAX_TAGS = 32
MAX_METADATA_BYTES = 16 * 1024
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]


# -- the cursor: url-safe base64 of {"a": last_activity_at, "i": id} ----------------------------------------------


def encode_cursor(last_activity_at: datetime, session_id: str) -> str:
    raw = json.dumps({"a": last_activity_at.astimezone(UTC).isoformat(), "i": session_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The keyset position in ``cursor``; ValueError when it is not one this server produced."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        at = datetime.fromisoformat(data["a"])
        session_id = data["i"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise ValueError("not a cursor returned by this API") from exc
    if at.tzinfo is None or not isinstance(session_id, str) or not 0 < len(session_id) <= 36:
        raise ValueError("not a cursor returned by this API")
    return at, session_id


def _as_utc(value: datetime | None) -> datetime | None:
    """Query timestamps without a zone are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class SessionListQuery(BaseModel):
    """``GET /sessions`` query: repeat ``status`` for any of them, ``tag`` for all of them."""

    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of the previous page.")
    status: list[SessionStatus] = Field(default_factory=list, max_length=8)
    model: str | None = Field(default=None, max_length=100)
    created_after: datetime | None = None
    created_before: datetime | None = None
    tag: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    parent_session_id: str | None = Field(default=None, max_length=36)

    @field_validator("cursor")
    @classmethod
    def _check_cursor(cls, value: str | None) -> str | None:
        if value:
            decode_cursor(value)
        return value or None

    @field_validator("created_after", "created_before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    def position(self) -> tuple[datetime, str] | None:
        return decode_cursor(self.cursor) if self.cursor else None


# -- responses ---------------------------------------------------------------------------------------------------


class SessionTotals(BaseModel):
    num_turns: int
    num_runs: int
    total_cost_usd: float
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int


class SessionRead(BaseModel):
    id: str
    status: SessionStatus
    model: str | None
    cwd: str = Field(description="Relative to the key's workspace.")
    title: str | None
    tags: list[str]
    metadata: dict[str, Any]
    parent_session_id: str | None
    totals: SessionTotals
    last_run_id: str | None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    expires_at: datetime | None = Field(description="When idle expiry ends (or ended) the session; null = never.")

    @classmethod
    def from_row(cls, row: AgentSession, *, status: str, expires_at: datetime | None) -> SessionRead:
        return cls(
            id=row.id,
            status=SessionStatus(status),
            model=row.model,
            cwd=row.cwd,
            title=row.title,
            tags=list(row.tags or []),
            metadata=dict(row.metadata_ or {}),
            parent_session_id=row.parent_session_id,
            totals=SessionTotals(
                num_turns=row.num_turns,
                num_runs=row.num_runs,
                total_cost_usd=row.total_cost_usd,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cache_read_input_tokens=row.cache_read_input_tokens,
                cache_creation_input_tokens=row.cache_creation_input_tokens,
            ),
            last_run_id=row.last_run_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_activity_at=row.last_activity_at,
            expires_at=expires_at,
        )


class RunSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    stop_reason: str | None
    prompt_preview: str
    num_turns: int
    total_cost_usd: float
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Run) -> RunSummary:
        return cls.model_validate(row)


class SessionDetail(SessionRead):
    last_run: RunSummary | None = Field(description="The most recently started run, running or finished.")


class SessionPage(BaseModel):
    data: list[SessionRead]
    total: int = Field(description="How many sessions match the filters (all pages).")
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


# -- update ------------------------------------------------------------------------------------------------------


class SessionUpdate(BaseModel):
    """``PATCH /sessions/{id}``: only the fields present change. ``title: null`` clears the title; ``tags`` and
    ``metadata`` replace the whole set or object (send ``[]`` / ``{}`` to clear)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=500)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON (is {size})")
        return value
