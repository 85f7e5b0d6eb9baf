"""Tenants: API keys over HTTP — who gets in, what is stored, what admins can do."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from sqlalchemy import select

from claude_agent_api.models import ApiKey
from tests.fixtures import app_state, create_key

PUBLIC_PATHS = {"/api/v1/health", "/api/v1/health/ready"}


def protected_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    out = []
    for template, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if template.startswith("/api/v1") and template not in PUBLIC_PATHS:
            path = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", template)
            out.extend((method.upper(), path) for method in sorted(operations))
    return out


async def test_every_protected_route_refuses_missing_unknown_and_revoked_keys(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    revoked = await create_key(client, "gone")
    listed = (await client.get("/api/v1/keys", headers={"X-API-Key": admin_key})).json()["data"]
    revoked_id = next(k["id"] for k in listed if k["name"] == "gone")
    assert (await client.delete(f"/api/v1/keys/{revoked_id}", headers={"X-API-Key": admin_key})).status_code == 200

    routes = protected_routes(client)
    assert ("POST", "/api/v1/keys") in routes
    credentials: list[dict[str, str]] = [
        {},
        {"X-API-Key": "caa_" + "x" * 43},
        {"Authorization": "Bearer caa_unknownunknownunknown"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": revoked},
        {"Authorization": f"Bearer {revoked}"},
    ]
    for method, path in routes:
        for headers in credentials:
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            body = response.json()
            assert body["error"]["code"] == "AUTHENTICATION_ERROR"
            assert set(body["error"]) == {"code", "message", "details"}
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_user_key_is_forbidden_on_admin_routes(client: httpx.AsyncClient, user_key: str) -> None:
    for method, path in [("GET", "/api/v1/keys"), ("POST", "/api/v1/keys"), ("DELETE", "/api/v1/keys/x")]:
        response = await client.request(
            method, path, headers={"Authorization": f"Bearer {user_key}"}, json={"name": "n"}
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "PERMISSION_DENIED"


async def test_admin_creates_lists_and_revokes_keys_and_only_digests_are_stored(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    created = await client.post(
        "/api/v1/keys", json={"name": "acme", "scope": "user"}, headers={"X-API-Key": admin_key}
    )
    assert created.status_code == 201
    body = created.json()
    secret = body["key"]
    assert secret.startswith("caa_") and len(secret) >= 40
    assert body["prefix"] == secret[:12] and body["scope"] == "user" and body["revoked_at"] is None

    # The new key works, and the listing never shows a key again.
    assert (await client.get("/api/v1/keys", headers={"X-API-Key": secret})).status_code == 403
    listing = (await client.get("/api/v1/keys", headers={"X-API-Key": admin_key})).json()["data"]
    assert any(k["id"] == body["id"] for k in listing)
    assert all("key" not in k for k in listing)
    assert secret not in str(listing)

    state = app_state(client.app)  # type: ignore[attr-defined]
    async with state.session_factory() as session:
        rows = (await session.execute(select(ApiKey))).scalars().all()
    stored = next(r for r in rows if r.id == body["id"])
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest()
    for row in rows:
        assert secret not in " ".join(str(getattr(row, c.key)) for c in ApiKey.__table__.columns)
        assert row.digest != secret

    # Revoke: 401 from then on, the row kept and marked.
    revoked = await client.delete(f"/api/v1/keys/{body['id']}", headers={"X-API-Key": admin_key})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await client.get("/api/v1/keys", headers={"X-API-Key": secret})).status_code == 401
    active = (await client.get("/api/v1/keys", headers={"X-API-Key": admin_key})).json()["data"]
    assert body["id"] not in {k["id"] for k in active}
    everything = await client.get("/api/v1/keys?include_revoked=true", headers={"X-API-Key": admin_key})
    assert body["id"] in {k["id"] for k in everything.json()["data"]}


async def test_revoking_an_unknown_key_is_404(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.delete("/api/v1/keys/nope", headers={"X-API-Key": admin_key})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "KEY_NOT_FOUND"


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "a", "scope": "root"}, {"name": "a", "extra": 1}])
async def test_key_creation_validates_the_body(
    client: httpx.AsyncClient, admin_key: str, body: dict[str, object]
) -> None:
    response = await client.post("/api/v1/keys", json=body, headers={"X-API-Key": admin_key})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["errors"][0]["field"] in {"name", "scope", "extra"}


async def test_bootstrap_admin_key_from_settings(make_settings) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures import running_app

    secret = "caa_bootstrap_" + "b" * 32
    settings = make_settings(bootstrap_admin_key=secret)
    async with running_app(settings) as c:
        assert (await c.get("/api/v1/keys", headers={"X-API-Key": secret})).status_code == 200
    # A second start (another instance, or a restart) does not duplicate it.
    async with running_app(settings) as c:
        listing = (await c.get("/api/v1/keys", headers={"X-API-Key": secret})).json()["data"]
        assert [k["name"] for k in listing].count("bootstrap") == 1
