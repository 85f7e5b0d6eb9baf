"""Request and response bodies of ``GET /sessions/{id}/checkpoints`` and ``POST /sessions/{id}/rewind``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from claude_agent_api.models import Checkpoint


class CheckpointRead(BaseModel):
    id: str = Field(description="The user message uuid of the turn; pass it as `checkpoint_id` to rewind.")
    run_id: str | None = Field(description="The run that answered this prompt.")
    created_at: datetime
    prompt: str = Field(description="The first line of the prompt.")
    files_changed: list[str] = Field(description="Files the turn wrote or edited, relative to the key's workspace.")

    @classmethod
    def from_row(cls, row: Checkpoint) -> CheckpointRead:
        return cls(
            id=row.user_message_uuid,
            run_id=row.run_id,
            created_at=row.created_at,
            prompt=row.prompt,
            files_changed=list(row.files_changed),
        )


class CheckpointList(BaseModel):
    data: list[CheckpointRead] = Field(description="Oldest first.")


class RewindRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint_id: str = Field(min_length=1, max_length=64, description="A checkpoint id (user message uuid).")
    truncate_conversation: bool = Field(
        default=False,
        description="Also cut the conversation before this checkpoint's prompt: the next turn continues from there "
        "(same session id) and this checkpoint and later ones are removed.",
    )


class RewindResult(BaseModel):
    session_id: str
    checkpoint_id: str
    truncated: bool
    files: list[str] = Field(description="Files changed at or after the checkpoint (now back to its state).")
