"""``GET /api/v1/skills``, ``/commands``, ``/agents`` over HTTP, on both backend pairs: what a key sees, and what
it never sees (another key's workspace, files behind symbolic links that point out, paths outside its jail)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from claude_agent_api.catalog.router import router as catalog_router
from claude_agent_api.kit.workspace import CliDirs, key_workspace
from tests.fixtures import app_state, create_key
from tests.sessions.factories import key_id

ROUTES = ("/api/v1/skills", "/api/v1/commands", "/api/v1/agents")


@dataclass
class Tenant:
    id: str
    headers: dict[str, str]
    workspace: Path
    home: Path


@pytest.fixture
def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client, with the catalog router mounted unless the app factory already does it."""
    app = client.app  # type: ignore[attr-defined]
    if "/api/v1/skills" not in app.openapi()["paths"]:
        app.include_router(catalog_router)
        app.openapi_schema = None
    return client


async def tenant(client: httpx.AsyncClient, name: str) -> Tenant:
    secret = await create_key(client, name)
    kid = await key_id(client, secret)
    settings = app_state(client.app).settings  # type: ignore[attr-defined]
    workspace = key_workspace(settings.effective_workspace_root, kid)
    workspace.mkdir(parents=True, exist_ok=True)
    return Tenant(kid, {"X-API-Key": secret}, workspace, CliDirs.for_key(settings.data_dir, kid).home)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def fm(**fields: str) -> str:
    return "---\n" + "".join(f"{k}: {v}\n" for k, v in fields.items()) + "---\n"


async def get(client: httpx.AsyncClient, route: str, who: Tenant, **params: Any) -> httpx.Response:
    return await client.get(route, headers=who.headers, params=params)


async def test_each_route_lists_exactly_the_files_of_the_workspace_and_the_cli_home(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    me = await tenant(api, "me")
    write(me.workspace / ".claude/skills/review/SKILL.md", fm(description="Review a diff", **{"allowed-tools": "Read"}))
    write(me.home / ".claude/skills/personal/SKILL.md", fm(name="my-skill", description="Mine"))
    write(me.workspace / ".claude/commands/deploy.md", fm(description="Deploy", model="haiku") + "To $1: $ARGUMENTS")
    write(me.workspace / ".claude/commands/frontend/component.md", "# Make a component\n")
    write(me.home / ".claude/commands/todo.md", fm(**{"argument-hint": "<item>"}) + "Add $ARGUMENTS to the list")
    write(me.workspace / ".claude/agents/reviewer.md", fm(description="Reviews", tools="Read, Grep"))
    write(me.home / ".claude/agents/helper.md", fm(name="helper-bot", description="Helps", model="sonnet"))

    skills, commands, agents = [await get(api, route, me) for route in ROUTES]

    assert skills.status_code == commands.status_code == agents.status_code == 200
    assert skills.json() == {
        "data": [
            {"name": "my-skill", "description": "Mine", "source": "user",
             "path": "~/.claude/skills/personal/SKILL.md", "allowed_tools": None},
            {"name": "review", "description": "Review a diff", "source": "project",
             "path": ".claude/skills/review/SKILL.md", "allowed_tools": ["Read"]},
        ],
        "errors": [],
    }  # fmt: skip
    assert commands.json() == {
        "data": [
            {"name": "deploy", "description": "Deploy", "source": "project", "path": ".claude/commands/deploy.md",
             "argument_hint": None, "allowed_tools": None, "model": "haiku", "arguments": ["$ARGUMENTS", "$1"]},
            {"name": "frontend:component", "description": "Make a component", "source": "project",
             "path": ".claude/commands/frontend/component.md", "argument_hint": None, "allowed_tools": None,
             "model": None, "arguments": []},
            {"name": "todo", "description": "Add $ARGUMENTS to the list", "source": "user",
             "path": "~/.claude/commands/todo.md", "argument_hint": "<item>", "allowed_tools": None, "model": None,
             "arguments": ["$ARGUMENTS"]},
        ],
        "errors": [],
    }  # fmt: skip
    assert agents.json() == {
        "data": [
            {"name": "helper-bot", "description": "Helps", "source": "user", "path": "~/.claude/agents/helper.md",
             "tools": None, "model": "sonnet"},
            {"name": "reviewer", "description": "Reviews", "source": "project", "path": ".claude/agents/reviewer.md",
             "tools": ["Read", "Grep"], "model": None},
        ],
        "errors": [],
    }  # fmt: skip
    for response in (skills, commands, agents):
        assert str(tmp_path) not in response.text


async def test_cwd_reads_its_own_and_its_parents_claude_directories_up_to_the_workspace(
    api: httpx.AsyncClient,
) -> None:
    me = await tenant(api, "me")
    write(me.workspace.parent / ".claude/agents/above.md", fm(description="Above every workspace"))
    write(me.workspace / ".claude/agents/root.md", fm(description="Root"))
    write(me.workspace / "app/.claude/agents/app.md", fm(description="App"))
    write(me.workspace / "lib/.claude/agents/lib.md", fm(description="A sibling of app"))

    response = await get(api, "/api/v1/agents", me, cwd="app", setting_sources="project")

    assert response.status_code == 200
    assert [(a["name"], a["path"]) for a in response.json()["data"]] == [
        ("app", "app/.claude/agents/app.md"),
        ("root", ".claude/agents/root.md"),
    ]


async def test_a_malformed_file_is_reported_with_its_path_and_the_others_are_listed(api: httpx.AsyncClient) -> None:
    me = await tenant(api, "me")
    write(me.workspace / ".claude/agents/good.md", fm(description="Good"))
    write(me.workspace / ".claude/agents/broken.md", "---\ndescription: [oops\n---\n")
    write(me.home / ".claude/agents/nodesc.md", fm(model="haiku"))

    response = await get(api, "/api/v1/agents", me)

    assert response.status_code == 200
    body = response.json()
    assert [a["name"] for a in body["data"]] == ["good"]
    assert body["errors"] == [
        {"path": ".claude/agents/broken.md",
         "message": "front matter is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2)"},
        {"path": "~/.claude/agents/nodesc.md", "message": "front matter has no 'description'"},
    ]  # fmt: skip


async def test_symlinks_out_of_the_workspace_are_not_followed(api: httpx.AsyncClient, tmp_path: Path) -> None:
    me, other = await tenant(api, "me"), await tenant(api, "other")
    secret = write(other.workspace / ".claude/skills/private/SKILL.md", fm(description="OTHER TENANT SECRET"))
    write(tmp_path / "server/cmd.md", "SERVER SECRET")
    (me.workspace / ".claude/skills").mkdir(parents=True)
    os.symlink(secret.parent, me.workspace / ".claude/skills/stolen")
    write(me.workspace / ".claude/commands/ok.md", "Fine")
    os.symlink(tmp_path / "server/cmd.md", me.workspace / ".claude/commands/leak.md")

    skills = await get(api, "/api/v1/skills", me)
    commands = await get(api, "/api/v1/commands", me)

    out = "leads outside the workspace (symbolic link); not followed"
    assert skills.json() == {"data": [], "errors": [{"path": ".claude/skills/stolen", "message": out}]}
    assert [c["name"] for c in commands.json()["data"]] == ["ok"]
    assert commands.json()["errors"] == [{"path": ".claude/commands/leak.md", "message": out}]
    assert "SECRET" not in skills.text + commands.text


@pytest.mark.parametrize("route", ROUTES)
async def test_cwd_outside_the_workspace_or_missing_is_422_naming_cwd(
    api: httpx.AsyncClient, tmp_path: Path, route: str
) -> None:
    me = await tenant(api, "me")
    os.symlink(tmp_path, me.workspace / "link-out")
    write(me.workspace / "file.txt", "not a directory")
    for cwd in ("../x", "..", "/etc", str(tmp_path), "a\x00b", "link-out", "missing", "file.txt", "x" * 2000):
        response = await get(api, route, me, cwd=cwd)
        assert response.status_code == 422, (cwd, response.text)
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert [e["loc"] for e in error["details"]["errors"]] == [["query", "cwd"]], cwd


async def test_another_keys_workspace_and_home_are_never_visible(api: httpx.AsyncClient) -> None:
    me, other = await tenant(api, "me"), await tenant(api, "other")
    write(other.workspace / ".claude/commands/theirs.md", "Their command")
    write(other.home / ".claude/commands/their-home.md", "Their home command")
    write(me.workspace / ".claude/commands/mine.md", "My command")

    mine = await get(api, "/api/v1/commands", me)
    theirs = await get(api, "/api/v1/commands", other)

    assert [c["name"] for c in mine.json()["data"]] == ["mine"]
    assert [c["name"] for c in theirs.json()["data"]] == ["their-home", "theirs"]
    for cwd in (f"../{other.id}", str(other.workspace)):
        assert (await get(api, "/api/v1/commands", me, cwd=cwd)).status_code == 422


async def test_setting_sources_choose_project_user_or_both(api: httpx.AsyncClient) -> None:
    me = await tenant(api, "me")
    write(me.workspace / ".claude/skills/team/SKILL.md", fm(description="Team"))
    write(me.home / ".claude/skills/own/SKILL.md", fm(description="Own"))

    async def names(**params: Any) -> list[tuple[str, str]]:
        response = await get(api, "/api/v1/skills", me, **params)
        assert response.status_code == 200, response.text
        return [(s["name"], s["source"]) for s in response.json()["data"]]

    assert await names(setting_sources="project") == [("team", "project")]
    assert await names(setting_sources="user") == [("own", "user")]
    assert await names(setting_sources=["user", "project"]) == await names() == [("own", "user"), ("team", "project")]
    bad = await get(api, "/api/v1/skills", me, setting_sources="local")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["loc"] == ["query", "setting_sources", 0]


async def test_routes_need_a_key(api: httpx.AsyncClient) -> None:
    for route in ROUTES:
        response = await api.get(route)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "AUTHENTICATION_ERROR"
