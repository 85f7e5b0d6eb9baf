"""API key rules: creation (the key is returned once), lookup by digest, revocation, the bootstrap key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from claude_agent_api.auth import keys
from claude_agent_api.auth.repository import ApiKeyRepository
from claude_agent_api.errors import KeyNotFound
from claude_agent_api.models import ApiKey, KeyScope
from claude_agent_api.models.base import utcnow
from claude_agent_api.webhooks.signing import new_secret

_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the key's id is the owner of every row it creates."""

    key_id: str
    name: str
    scope: KeyScope

    @property
    def is_admin(self) -> bool:
        return self.scope is KeyScope.ADMIN


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = ApiKeyRepository(session)

    async def create(self, name: str, scope: KeyScope = KeyScope.USER) -> tuple[ApiKey, str]:
        secret = keys.generate_key()
        row = await self.repo.add(
            ApiKey(
                name=name,
                scope=scope.value,
                digest=keys.digest(secret),
                prefix=keys.display_prefix(secret),
                webhook_secret=new_secret(),
            )
        )
        return row, secret

    async def set_default_webhooks(self, key_id: str, webhooks: list[dict[str, Any]] | None) -> ApiKey:
        row = await self.repo.get(key_id)
        if row is None:
            raise KeyNotFound()
        row.default_webhooks = webhooks
        await self.repo.session.flush()
        return row

    async def default_webhooks(self, key_id: str) -> list[dict[str, Any]]:
        row = await self.repo.get(key_id)
        return list(row.default_webhooks or []) if row is not None else []

    async def rotate_webhook_secret(self, key_id: str) -> ApiKey:
        row = await self.repo.get(key_id)
        if row is None:
            raise KeyNotFound()
        row.webhook_secret = new_secret()
        await self.repo.session.flush()
        return row

    async def webhook_secret(self, key_id: str) -> str:
        """The key's webhook signing secret (created on first use for keys that predate them)."""
        row = await self.repo.get(key_id)
        if row is None:
            raise KeyNotFound()
        if row.webhook_secret is None:
            row.webhook_secret = new_secret()
            await self.repo.session.flush()
        return row.webhook_secret

    async def ensure_bootstrap(self, secret: str) -> ApiKey:
        """Make the configured bootstrap key a stored admin key (idempotent)."""
        existing = await self.repo.get_by_digest(keys.digest(secret))
        if existing is not None:
            return existing
        return await self.repo.add(
            ApiKey(
                name="bootstrap",
                scope=KeyScope.ADMIN.value,
                digest=keys.digest(secret),
                prefix=keys.display_prefix(secret),
            )
        )

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal for an active key, or None. Digests are compared in constant time."""
        wanted = keys.digest(secret)
        row = await self.repo.get_by_digest(wanted)
        if row is None or not keys.digests_match(row.digest, wanted) or not row.is_active:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
            await self.repo.touch(row.id, now)
        return Principal(key_id=row.id, name=row.name, scope=KeyScope(row.scope))

    async def list(self, *, include_revoked: bool = False) -> Sequence[ApiKey]:
        return await self.repo.list(include_revoked=include_revoked)

    async def revoke(self, key_id: str) -> ApiKey:
        row = await self.repo.get(key_id)
        if row is None:
            raise KeyNotFound()
        if row.revoked_at is None:
            await self.repo.revoke(row, utcnow())
        return row
