"""API keys: the tenants. Only a SHA-256 digest of each key is stored."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from claude_agent_api.models.base import Base, IdMixin, TimestampMixin


class KeyScope(StrEnum):
    USER = "user"
    ADMIN = "admin"


class ApiKey(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(200))
    # The first characters of the key, shown in listings so a person can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16), default=KeyScope.USER.value)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    # Signs this tenant's webhook deliveries (Standard Webhooks); shown once, when created or rotated.
    webhook_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    # Webhooks used by runs of this key that name none themselves (a list of WebhookSpec dicts).
    default_webhooks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)

    __table_args__ = (Index("ix_api_keys_created_at", "created_at"),)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
