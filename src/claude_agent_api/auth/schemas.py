"""Request and response bodies of the key administration API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from claude_agent_api.webhooks.schemas import WebhookSpec


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="A label for the key's owner.")
    scope: Literal["user", "admin"] = "user"


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    scope: Literal["user", "admin"]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    default_webhooks: list[WebhookSpec] | None = Field(
        default=None, description="Used by this key's runs that name no webhooks themselves."
    )


class KeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_webhooks: list[WebhookSpec] | None = Field(max_length=10, description="null clears them.")


class KeyCreated(KeyRead):
    key: str = Field(description="The API key itself. Shown once: only its digest is stored.")
    webhook_secret: str = Field(
        description="Signs this key's webhook deliveries (Standard Webhooks). Shown once; rotate to get a new one."
    )


class WebhookSecret(BaseModel):
    id: str
    webhook_secret: str = Field(description="The new signing secret; the previous one stops working.")


class KeyList(BaseModel):
    data: list[KeyRead]
