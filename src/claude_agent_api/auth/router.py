"""API key administration (admin scope): ``POST/GET/DELETE /api/v1/keys``."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from claude_agent_api.auth.dependencies import AdminKey
from claude_agent_api.auth.schemas import KeyCreate, KeyCreated, KeyList, KeyRead, KeyUpdate, WebhookSecret
from claude_agent_api.auth.service import ApiKeyService
from claude_agent_api.dependencies import DbSession, State
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.models import KeyScope
from claude_agent_api.webhooks.ssrf import require_safe_url

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create_key(body: KeyCreate, admin: AdminKey, db: DbSession) -> KeyCreated:
    row, secret = await ApiKeyService(db).create(body.name, KeyScope(body.scope))
    assert row.webhook_secret is not None
    return KeyCreated(**KeyRead.model_validate(row).model_dump(), key=secret, webhook_secret=row.webhook_secret)


@router.patch("/{key_id}", response_model=KeyRead)
async def update_key(key_id: str, body: KeyUpdate, admin: AdminKey, db: DbSession, state: State) -> KeyRead:
    """Set the key's default webhooks (checked against the SSRF rules like a request's)."""
    for index, hook in enumerate(body.default_webhooks or []):
        require_safe_url(hook.url, allow=state.settings.webhook_allow_private, field=["default_webhooks", index, "url"])
    hooks = [h.model_dump(mode="json") for h in body.default_webhooks] if body.default_webhooks else None
    return KeyRead.model_validate(await ApiKeyService(db).set_default_webhooks(key_id, hooks))


@router.post("/{key_id}/webhook-secret", response_model=WebhookSecret)
async def rotate_webhook_secret(key_id: str, admin: AdminKey, db: DbSession) -> WebhookSecret:
    row = await ApiKeyService(db).rotate_webhook_secret(key_id)
    assert row.webhook_secret is not None
    return WebhookSecret(id=row.id, webhook_secret=row.webhook_secret)


@router.get("", response_model=KeyList)
async def list_keys(admin: AdminKey, db: DbSession, include_revoked: bool = Query(default=False)) -> KeyList:
    rows = await ApiKeyService(db).list(include_revoked=include_revoked)
    return KeyList(data=[KeyRead.model_validate(r) for r in rows])


@router.delete("/{key_id}", response_model=KeyRead)
async def revoke_key(key_id: str, admin: AdminKey, db: DbSession) -> KeyRead:
    return KeyRead.model_validate(await ApiKeyService(db).revoke(key_id))
