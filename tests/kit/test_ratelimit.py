"""Abuse limits through the API: 429 with headers, per key and per address, spoofing does not help."""

from __future__ import annotations

import pytest

from claude_agent_api.errors import RateLimitExceeded
from tests.fixtures import SettingsFactory, create_key, running_app


async def test_key_budget_answers_429_with_retry_after_and_ratelimit_headers(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(rate_limit_key_requests="3/minute")) as client:
        key = await create_key(client)
        seen = []
        for _ in range(3):
            ok = await client.get("/api/v1/keys", headers={"X-API-Key": key})
            assert ok.status_code == 403  # a user key, but it was counted
            seen.append(int(ok.headers["RateLimit-Remaining"]))
        assert seen == [2, 1, 0]
        over = await client.get("/api/v1/keys", headers={"X-API-Key": key})
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        assert over.headers["RateLimit-Limit"] == "3"
        assert over.headers["RateLimit-Remaining"] == "0"
        assert over.headers["RateLimit-Policy"] == "3;w=60"
        # Another key has its own budget.
        other = await create_key(client, "other")
        assert (await client.get("/api/v1/keys", headers={"X-API-Key": other})).status_code == 403


async def test_address_budget_limits_requests_without_a_key(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(rate_limit_ip_requests="2/minute")) as client:
        statuses = [(await client.get("/api/v1/keys")).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]


async def test_spoofed_forwarded_for_does_not_escape_the_limit(make_settings: SettingsFactory) -> None:
    # No trusted proxies (the default): X-Forwarded-For is ignored.
    async with running_app(make_settings(rate_limit_ip_requests="2/minute")) as client:
        statuses = [
            (await client.get("/api/v1/keys", headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code
            for i in range(4)
        ]
        assert statuses == [401, 401, 429, 429]


async def test_forwarded_for_is_used_only_from_a_trusted_proxy(make_settings: SettingsFactory) -> None:
    settings = make_settings(rate_limit_ip_requests="1/minute", trusted_proxies=["10.0.0.0/8"])
    async with running_app(settings, client_host="10.1.2.3") as client:
        # Through the proxy, each real client has its own budget...
        assert (await client.get("/api/v1/keys", headers={"X-Forwarded-For": "198.51.100.1"})).status_code == 401
        assert (await client.get("/api/v1/keys", headers={"X-Forwarded-For": "198.51.100.2"})).status_code == 401
        # ...and a client cannot prepend a fake address: the right-most untrusted hop counts.
        spoof = await client.get("/api/v1/keys", headers={"X-Forwarded-For": "192.0.2.9, 198.51.100.1"})
        assert spoof.status_code == 429
    async with running_app(settings, client_host="192.0.2.50") as direct:
        # A peer that is not a trusted proxy is judged by its own address, whatever it forwards.
        assert (await direct.get("/api/v1/keys", headers={"X-Forwarded-For": "198.51.100.7"})).status_code == 401
        assert (await direct.get("/api/v1/keys", headers={"X-Forwarded-For": "198.51.100.8"})).status_code == 429


async def test_run_budget_is_separate(make_settings: SettingsFactory) -> None:
    from claude_agent_api.kit.ratelimit import RateLimiter

    limiter = RateLimiter(make_settings(rate_limit_key_runs="1/minute", rate_limit_key_requests="5/minute"))
    try:
        assert await limiter.hit("key", "k1", "runs") is not None
        assert (await limiter.hit("key", "k1", "requests")).remaining == 4  # type: ignore[union-attr]
        with pytest.raises(RateLimitExceeded):
            await limiter.hit("key", "k1", "runs")
    finally:
        await limiter.reset()
        await limiter.close()


async def test_disabled_rate_limits_count_nothing(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(rate_limit_enabled=False, rate_limit_ip_requests="1/minute")) as c:
        statuses = {(await c.get("/api/v1/keys")).status_code for _ in range(3)}
        assert statuses == {401}
        assert "RateLimit-Limit" not in (await c.get("/api/v1/keys")).headers
