"""One error envelope for everything the API returns, and nothing internal leaks from a 500."""

from __future__ import annotations

import httpx

from claude_agent_api.app import create_app
from claude_agent_api.models import KeyScope
from tests.fixtures import SettingsFactory, create_key, running_app


async def test_unknown_route_uses_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "NOT_FOUND", "message": "Not Found", "details": {}}}


async def test_wrong_method_uses_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_malformed_json_is_a_validation_error(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.post(
        "/api/v1/keys", content=b"{not json", headers={"X-API-Key": admin_key, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_unexpected_error_is_500_with_request_id_and_no_internals(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    app = create_app(settings)

    @app.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail at /srv/app/module.py line 42")

    async with running_app(settings, app=app) as client:
        response = await client.get("/api/v1/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": {"code": "INTERNAL_ERROR", "message": "Internal server error.", "details": {"request_id": "req-123"}}
    }
    assert "secret internal detail" not in response.text and "Traceback" not in response.text


async def test_body_over_the_cap_is_413(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(max_body_bytes=2048)) as client:
        declared = await client.post("/api/v1/keys", content=b"x" * 4096, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(8):
                yield b"x" * 512

        # No Content-Length: the cap is enforced while the body streams in (after authentication).
        admin = await create_key(client, "admin", KeyScope.ADMIN)
        headers = {"Content-Type": "application/json", "X-API-Key": admin}
        streamed = await client.post("/api/v1/keys", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        listed = await client.get("/api/v1/keys", headers={"X-API-Key": admin})
        assert [k["name"] for k in listed.json()["data"]] == ["admin"]  # nothing was created


async def test_cors_preflight_allows_configured_origins_only(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(cors_origins=["https://app.example"])) as client:
        headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        ok = await client.options("/api/v1/keys", headers=headers)
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        bad = await client.options("/api/v1/keys", headers={**headers, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in bad.headers
