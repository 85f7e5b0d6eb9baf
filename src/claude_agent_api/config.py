"""Settings: one object, one env prefix (``CAA_``), validated at start.

Besides the prefix, three standard names are read as they are: ``DATABASE_URL`` and ``REDIS_URL`` (switch to the
production backends) and ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL`` (the model endpoint the agent CLI talks
to). An optional ``.env`` file in the working directory is read too. A bad value stops start-up with a message
naming the setting (see :func:`load_settings`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".data")


class SettingsError(Exception):
    """Raised when the configuration is invalid; the message names each bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CAA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # Where things live.
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CAA_DATABASE_URL", "DATABASE_URL", "database_url")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CAA_REDIS_URL", "REDIS_URL", "redis_url")
    )
    workspace_root: Path | None = None
    auto_migrate: bool = True
    db_pool_size: int = Field(default=10, ge=1, le=200)
    namespace: str = Field(default="caa", pattern=r"^[A-Za-z0-9_.-]{1,32}$")

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True

    # Tenants.
    bootstrap_admin_key: SecretStr | None = None

    # The model endpoint handed to the agent CLI.
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CAA_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY", "anthropic_api_key"),
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CAA_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL", "anthropic_base_url"),
    )

    # Agent runs.
    instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", max_length=64)
    agent_cli_path: Path | None = Field(default=None, description="Another CLI binary or a wrapper around it.")
    agent_max_retries: int | None = Field(default=None, ge=0, le=20, description="CLAUDE_CODE_MAX_RETRIES")
    agent_env_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mcp_env_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_runs_per_instance: int = Field(default=8, ge=1, le=1000)
    max_runs_per_key: int = Field(default=4, ge=1, le=1000)
    session_lock_ttl: float = Field(default=30.0, ge=2, le=3600)
    event_retention_seconds: int = Field(default=3600, ge=10)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)

    drain_seconds: float = Field(
        default=20.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long running runs may finish before being interrupted.",
    )
    ws_auth_timeout_seconds: float = Field(default=10.0, gt=0, le=300, description="For a first `auth` message.")
    approval_timeout_seconds: float = Field(
        default=600.0, ge=1, le=86400, description="An unanswered approval or question is denied after this."
    )

    # Sessions.
    session_idle_expiry_seconds: int | None = Field(
        default=None, ge=60, description="Sessions idle longer than this expire (410); unset = never."
    )
    expiry_sweep_interval_seconds: float = Field(default=300.0, ge=1)
    warm_idle_seconds: float = Field(default=300.0, ge=0, description="Keep an agent connected after a turn.")
    warm_pool_size: int = Field(default=16, ge=0, le=1000)

    # Webhooks (hook events delivered to client URLs).
    webhook_allow_private: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Hosts, IPs or CIDRs admitted although private (self-hosted receivers)."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_retries: int = Field(default=3, ge=0, le=10)

    # Abuse limits (limits-library notation, e.g. "300/minute" or "10/second;300/minute").
    rate_limit_enabled: bool = True
    rate_limit_key_requests: str = "600/minute"
    rate_limit_key_runs: str = "60/minute"
    rate_limit_ip_requests: str = "1200/minute"
    rate_limit_ip_runs: str = "120/minute"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)

    # Browsers.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith(("postgres://", "postgresql://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("rate_limit_key_requests", "rate_limit_key_runs", "rate_limit_ip_requests", "rate_limit_ip_runs")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '60/minute': {value!r}") from exc
        return value

    @field_validator(
        "trusted_proxies",
        "cors_origins",
        "agent_env_allowlist",
        "mcp_env_allowlist",
        "webhook_allow_private",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Accept a comma-separated string or a JSON list from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {item!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_cors(self) -> Settings:
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "cors_origins='*' cannot be combined with cors_allow_credentials=true; list the origins instead"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'claude-agent-api.db').resolve()}"

    @property
    def effective_workspace_root(self) -> Path:
        return (self.workspace_root or self.data_dir / "workspaces").resolve()

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies)

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction processor."""
        secrets = [self.bootstrap_admin_key, self.anthropic_api_key]
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation failures into one readable :class:`SettingsError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            env = f"CAA_{name.upper()}" if err["loc"] else ""
            lines.append(f"  {name} ({env}): {err['msg']}" if env else f"  {err['msg']}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None
