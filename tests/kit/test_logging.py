"""Structured logs: JSON lines with a request id, and no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from claude_agent_api.app import create_app
from claude_agent_api.kit.logging import configure_logging, redactor
from tests.fixtures import SettingsFactory, create_key, running_app


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_caa_handler", False):
            root.removeHandler(handler)
    redactor.clear()
    structlog.reset_defaults()


async def test_no_secret_reaches_the_logs(log_output: io.StringIO, make_settings: SettingsFactory) -> None:
    anthropic_key = "sk-ant-api03-" + "z" * 40
    bootstrap = "caa_bootstrapsecret_" + "q" * 30
    settings = make_settings(anthropic_api_key=anthropic_key, bootstrap_admin_key=bootstrap)
    app = create_app(settings)

    @app.get("/api/v1/leaky")
    async def leaky() -> None:
        structlog.get_logger("test").info(
            "leak.attempt", api_key=user, headers={"authorization": f"Bearer {user}"}, note=f"env has {anthropic_key}"
        )
        raise RuntimeError(f"failed while using {user} and {anthropic_key} and whsec_abcdefghijklmnop")

    async with running_app(settings, app=app) as client:
        user = await create_key(client, "u")
        await client.get("/api/v1/keys", headers={"X-API-Key": user})
        await client.get("/api/v1/keys", headers={"Authorization": f"Bearer {user}"})
        await client.get(f"/api/v1/keys?api_key={user}")
        await client.get("/api/v1/keys", headers={"X-API-Key": bootstrap})
        assert (await client.get("/api/v1/leaky", headers={"X-API-Key": user})).status_code == 500

    output = log_output.getvalue()
    assert "leak.attempt" in output and "request.unhandled_error" in output  # the lines were written...
    for secret in (user, anthropic_key, bootstrap, "whsec_abcdefghijklmnop"):
        assert secret not in output  # ...without the secrets
    assert "[REDACTED]" in output


async def test_every_request_line_is_json_with_a_request_id(log_output: io.StringIO, client) -> None:  # type: ignore[no-untyped-def]
    await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    request_lines = [line for line in lines if line["event"] == "http.request"]
    assert request_lines
    assert request_lines[-1]["request_id"] == "abc-123"
    assert request_lines[-1]["status"] == 200 and request_lines[-1]["route"] == "/api/v1/health"
    assert all({"timestamp", "level", "event"} <= line.keys() for line in lines)


def test_redactor_scrubs_nested_structures() -> None:
    scrubbed = redactor.scrub({"a": [{"password": "hunter2"}, "Bearer abcdefghijklmnop"], "ok": "fine"})
    assert scrubbed == {"a": [{"password": "[REDACTED]"}, "Bearer [REDACTED]"], "ok": "fine"}
