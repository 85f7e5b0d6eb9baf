"""Settings: defaults are the embedded ones; a bad value stops start-up naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_agent_api.config import Settings, SettingsError, load_settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CAA_DATABASE_URL", "CAA_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / '.data' / 'claude-agent-api.db'}"
    assert settings.redis_url is None
    assert settings.effective_workspace_root == tmp_path / ".data" / "workspaces"


def test_standard_names_switch_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/app")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-123456789")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+asyncpg://u@db:5432/app"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.secret_values() == ["sk-ant-test-123456789"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CAA_PORT": "70000"}, "CAA_PORT"),
        ({"DATABASE_URL": "mysql://x"}, "CAA_DATABASE_URL"),
        ({"CAA_RATE_LIMIT_KEY_RUNS": "lots"}, "CAA_RATE_LIMIT_KEY_RUNS"),
        ({"CAA_TRUSTED_PROXIES": "10.0.0.0/8,not-an-ip"}, "CAA_TRUSTED_PROXIES"),
        ({"CAA_CORS_ORIGINS": "*", "CAA_CORS_ALLOW_CREDENTIALS": "true"}, "cors_allow_credentials"),
    ],
)
def test_invalid_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as excinfo:
        load_settings(_env_file=None)
    assert named in str(excinfo.value)


def test_lists_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAA_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    monkeypatch.setenv("CAA_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
    settings = load_settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]
