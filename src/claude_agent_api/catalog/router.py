"""``GET /api/v1/skills``, ``GET /api/v1/commands``, ``GET /api/v1/agents``: what the agent would see for a cwd.

Query: ``cwd`` — a directory relative to the caller's workspace (default: the workspace root); it must exist and
stay inside the workspace (``..``, absolute paths elsewhere, NUL bytes and symbolic links that point out are 422
``VALIDATION_ERROR`` with ``loc`` ``["query", "cwd"]``, as FastAPI names query fields). ``setting_sources`` —
repeatable, ``project`` and/or ``user`` (default both), like the SDK option of the same name. A key only ever
sees its own workspace and its own CLI home.

Every answer is ``{"data": [...], "errors": [{"path", "message"}]}`` (see ``catalog.schemas``); files are read in
a worker thread (see ``catalog.discovery`` for where, what and the limits). Like starting a run, a listing
creates the key's workspace and CLI directories if they do not exist yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query

from claude_agent_api.auth.dependencies import CurrentKey
from claude_agent_api.catalog.discovery import (
    Source,
    discover_agents,
    discover_commands,
    discover_skills,
    project_sources,
    user_source,
)
from claude_agent_api.catalog.schemas import AgentList, CommandList, SkillList, SourceName
from claude_agent_api.config import Settings
from claude_agent_api.dependencies import State
from claude_agent_api.errors import RequestValidationFailed
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.kit.workspace import CliDirs, PathEscape, key_workspace, resolve_inside

router = APIRouter(prefix=API_PREFIX, tags=["catalog"])

Cwd = Annotated[str, Query(max_length=1024, description="Directory relative to the key's workspace; default its root.")]
Sources = Annotated[
    list[SourceName] | None, Query(description="Where to look: `project`, `user` (repeatable; default both).")
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "`cwd` is outside the workspace or not an existing directory."}
}
Listing = TypeVar("Listing", SkillList, CommandList, AgentList)


def sources_for(settings: Settings, key_id: str, cwd: str, wanted: list[SourceName] | None) -> list[Source]:
    """The directories to read for this key and ``cwd``; 422 naming ``cwd`` if it is not a workspace directory."""
    workspace = key_workspace(settings.effective_workspace_root, key_id)
    workspace.mkdir(parents=True, exist_ok=True)
    try:
        directory = resolve_inside(workspace, cwd)
    except PathEscape as exc:
        raise RequestValidationFailed.for_field(("query", "cwd"), str(exc)) from None
    if not directory.is_dir():
        raise RequestValidationFailed.for_field(("query", "cwd"), "is not an existing directory in the workspace")
    kinds = set(wanted or ("project", "user"))
    sources = project_sources(workspace.resolve(), directory) if "project" in kinds else []
    if "user" in kinds:
        sources.append(user_source(CliDirs.for_key(settings.data_dir, key_id).home))
    return sources


async def _discover(
    discover: Callable[[list[Source]], Listing],
    settings: Settings,
    key_id: str,
    cwd: str,
    wanted: list[SourceName] | None,
) -> Listing:
    return await asyncio.to_thread(lambda: discover(sources_for(settings, key_id, cwd, wanted)))


@router.get("/skills", response_model=SkillList, responses=_ERRORS, summary="Skills the agent would see")
async def list_skills(principal: CurrentKey, state: State, cwd: Cwd = "", setting_sources: Sources = None) -> SkillList:
    return await _discover(discover_skills, state.settings, principal.key_id, cwd, setting_sources)


@router.get("/commands", response_model=CommandList, responses=_ERRORS, summary="Slash commands the agent would see")
async def list_commands(
    principal: CurrentKey, state: State, cwd: Cwd = "", setting_sources: Sources = None
) -> CommandList:
    return await _discover(discover_commands, state.settings, principal.key_id, cwd, setting_sources)


@router.get("/agents", response_model=AgentList, responses=_ERRORS, summary="Subagents the agent would see")
async def list_agents(principal: CurrentKey, state: State, cwd: Cwd = "", setting_sources: Sources = None) -> AgentList:
    return await _discover(discover_agents, state.settings, principal.key_id, cwd, setting_sources)
