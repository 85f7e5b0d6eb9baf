"""The ``claude-agent-api`` command, run as a user would: a fresh data directory, no other step."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.processes import run_command, server_process

pytestmark = pytest.mark.timeout(180)


def test_fresh_start_serves_and_a_cli_key_authenticates(tmp_path: Path) -> None:
    env = {"CAA_DATA_DIR": str(tmp_path / "data")}
    created = run_command(["keys", "create", "--name", "demo"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    key = re.search(r"key:\s+(caa_\S+)", created.stdout)
    assert key, created.stdout
    assert "not shown again" in created.stderr

    with server_process(env, tmp_path) as base:
        assert httpx.get(f"{base}/api/v1/health").json()["status"] == "ok"
        ready = httpx.get(f"{base}/api/v1/health/ready").json()
        assert ready["checks"]["database"]["backend"] == "sqlite"
        # A user key passes authentication (403: not an admin) where no key gets 401.
        assert httpx.get(f"{base}/api/v1/keys").status_code == 401
        assert httpx.get(f"{base}/api/v1/keys", headers={"X-API-Key": key.group(1)}).status_code == 403
    assert (tmp_path / "data" / "claude-agent-api.db").exists()

    listed = run_command(["keys", "list"], env, tmp_path)
    assert "demo" in listed.stdout and key.group(1) not in listed.stdout
    key_id = re.search(r"id:\s+(\S+)", created.stdout)
    assert key_id
    assert run_command(["keys", "revoke", key_id.group(1)], env, tmp_path).returncode == 0
    assert "revoked" in run_command(["keys", "list", "--all"], env, tmp_path).stdout
    assert run_command(["keys", "revoke", "no-such-id"], env, tmp_path).returncode == 1


def test_invalid_settings_stop_start_up_with_the_setting_named(tmp_path: Path) -> None:
    result = run_command(["serve"], {"CAA_DATA_DIR": str(tmp_path), "CAA_PORT": "not-a-port"}, tmp_path)
    assert result.returncode == 2
    assert "CAA_PORT" in result.stderr


def test_doctor_reports_each_check_and_fails_without_a_model_endpoint(tmp_path: Path) -> None:
    env = {"CAA_DATA_DIR": str(tmp_path / "data")}
    run_command(["db", "upgrade"], env, tmp_path)
    missing = run_command(["doctor"], env, tmp_path)
    assert missing.returncode == 1
    assert re.search(r"FAIL\s+model endpoint", missing.stdout)
    assert re.search(r"OK\s+database\s+sqlite, schema at", missing.stdout)
    assert re.search(r"OK\s+coordination\s+memory", missing.stdout)
    assert re.search(r"OK\s+claude cli\s+\d+\.\d+", missing.stdout)

    configured = run_command(
        ["doctor"], {**env, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ANTHROPIC_API_KEY": "sk-ant-x"}, tmp_path
    )
    assert configured.returncode == 0, configured.stdout
    assert "sk-ant-x" not in configured.stdout


def test_doctor_fails_when_redis_is_unreachable(tmp_path: Path) -> None:
    env = {"CAA_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:1/0", "ANTHROPIC_API_KEY": "k"}
    result = run_command(["doctor"], env, tmp_path)
    assert result.returncode == 1
    assert re.search(r"FAIL\s+coordination\s+redis: unreachable", result.stdout)
