"""Webhook settings of a request (or a key's defaults): which hook events go to which URL."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


HookEventName = Literal[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "UserPromptSubmit",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "Notification",
]


class WebhookSpec(Strict):
    """Where to deliver which hook events. The URL is checked against SSRF rules when given, and the address
    actually connected to is checked again at each delivery."""

    url: Annotated[str, Field(min_length=8, max_length=2000)]
    events: list[HookEventName] = Field(min_length=1, max_length=9)
    matcher: str | None = Field(
        default=None, max_length=200, description="Tool-name pattern for tool events, e.g. `Bash` or `Write|Edit`."
    )
    timeout_seconds: float = Field(
        default=10.0, ge=0.5, le=120, description="Per delivery; PreToolUse denies after it."
    )

    @field_validator("matcher")
    @classmethod
    def _matcher(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid pattern: {exc}") from exc
        return value
