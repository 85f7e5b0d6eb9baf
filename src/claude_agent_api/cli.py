"""The ``claude-agent-api`` command: ``serve``, ``db upgrade``, ``keys create|list|revoke``, ``doctor``."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
import uvicorn

from claude_agent_api.config import Settings, SettingsError, load_settings
from claude_agent_api.kit import migrations
from claude_agent_api.kit.logging import configure_logging

app = typer.Typer(help="Claude Agent API: run Claude agents over HTTP.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (tenants).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CAA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CAA_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (CAA_WORKERS).")] = None,
) -> None:
    """Run the HTTP server."""
    for name, value in (("CAA_HOST", host), ("CAA_PORT", port), ("CAA_WORKERS", workers)):
        if value is not None:
            os.environ[name] = str(value)
    settings = _settings()
    configure_logging(settings.log_level, json=settings.log_json, secrets=settings.secret_values())
    if settings.auto_migrate:
        # Once, before workers start, so they do not race for it.
        migrations.upgrade(settings.effective_database_url)
    uvicorn.run(
        "claude_agent_api.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        # Client addresses come from our own trusted-proxy setting, never from uvicorn's defaults.
        proxy_headers=False,
        forwarded_allow_ips="",
        server_header=False,
        # Runs get drain_seconds to finish, then are interrupted and their streams told to reconnect.
        timeout_graceful_shutdown=int(settings.drain_seconds) + 20,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply pending migrations."""
    settings = _settings()
    migrations.upgrade(settings.effective_database_url, revision)
    typer.echo(f"database at {revision}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key's owner.")],
    admin: Annotated[bool, typer.Option("--admin", help="Admin scope (manages keys).")] = False,
) -> None:
    """Create a key and print it (shown once: only its digest is stored)."""
    from claude_agent_api.cli_keys import create_key

    row_id, secret, webhook_secret = asyncio.run(create_key(_settings(), name, admin=admin))
    typer.echo(f"id:     {row_id}\nscope:  {'admin' if admin else 'user'}\nkey:    {secret}")
    typer.echo(f"webhook signing secret: {webhook_secret}")
    typer.echo("Store the key and the signing secret now: they are not shown again.", err=True)


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys (prefix, scope, state)."""
    from claude_agent_api.cli_keys import list_keys

    rows = asyncio.run(list_keys(_settings(), include_revoked=include_revoked))
    typer.echo(f"{'ID':36}  {'PREFIX':12}  {'SCOPE':5}  {'STATE':7}  NAME")
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        typer.echo(f"{row.id:36}  {row.prefix:12}  {row.scope:5}  {state:7}  {row.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from claude_agent_api.cli_keys import revoke_key

    found = asyncio.run(revoke_key(_settings(), key_id))
    if not found:
        typer.echo(f"no key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command()
def doctor() -> None:
    """Check configuration, database, coordination, the bundled CLI and the model endpoint."""
    from claude_agent_api.doctor import run_checks

    settings = _settings()
    results = asyncio.run(run_checks(settings))
    width = max(len(r.name) for r in results)
    for r in results:
        typer.echo(f"{r.status.upper():5}  {r.name:{width}}  {r.detail}")
    if any(r.status == "fail" for r in results):
        raise typer.Exit(1)


def main() -> None:
    app(prog_name="claude-agent-api")


if __name__ == "__main__":
    main()
