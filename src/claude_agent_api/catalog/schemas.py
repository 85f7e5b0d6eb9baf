"""Response models of the catalog routes, and how a file's front matter becomes one of them.

Every list answers ``{"data": [...], "errors": [...]}``: the items that were read, and the files that were found
but could not be listed (bad front matter, too large, unreadable, a symbolic link leading out). A bad file never
hides the good ones.

Paths are never absolute server paths: project items are relative to the key's workspace
(``app/.claude/commands/deploy.md``), user items start with ``~/`` (``~/.claude/agents/reviewer.md``).

Front matter is YAML between ``---`` lines, read with ``yaml.safe_load`` (:func:`parse_front_matter`). A skill or
an agent must have a ``description``; a command falls back to its first non-empty body line (a Markdown heading
loses its ``#``s; cut at 100 characters), as the CLI does. Tool lists are a comma-separated string or a list, split
like the CLI splits them (:func:`split_tools`). Anything else that is wrong raises :class:`Malformed`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

SourceName = Literal["project", "user"]
_PATH_DOC = "Relative to the workspace, or `~/...` for the CLI's home directory."


class CatalogProblem(BaseModel):
    """A file (or directory) that was found and skipped, and why."""

    path: str = Field(description=_PATH_DOC)
    message: str


class CatalogItem(BaseModel):
    name: str
    description: str
    source: SourceName
    path: str = Field(description=_PATH_DOC)


class Skill(CatalogItem):
    """``.claude/skills/<dir>/SKILL.md``; ``name`` is the front matter's ``name`` or the directory's."""

    allowed_tools: list[str] | None = Field(default=None, description="Front matter `allowed-tools`, if set.")

    @classmethod
    def parse(cls, meta: dict[str, Any], body: str, source: SourceName, path: str, name: str) -> Skill:
        description = _required_description(meta)
        allowed = tools_field(meta, "allowed-tools")
        name = text_field(meta, "name") or name
        return cls(name=name, description=description, source=source, path=path, allowed_tools=allowed)


class Command(CatalogItem):
    """``.claude/commands/**/*.md``; ``name`` is the file stem, namespaced by sub-directory (``frontend:component``)."""

    argument_hint: str | None = Field(default=None, description="Front matter `argument-hint`.")
    allowed_tools: list[str] | None = Field(default=None, description="Front matter `allowed-tools`, if set.")
    model: str | None = None
    arguments: list[str] = Field(
        default_factory=list,
        description="Placeholders the body uses: `$ARGUMENTS`, then `$ARGUMENTS[0]`…, then `$0`, `$1`….",
    )

    @classmethod
    def parse(cls, meta: dict[str, Any], body: str, source: SourceName, path: str, name: str) -> Command:
        return cls(
            name=name,
            description=text_field(meta, "description") or first_line(body),
            source=source,
            path=path,
            argument_hint=_argument_hint(meta),
            allowed_tools=tools_field(meta, "allowed-tools"),
            model=text_field(meta, "model"),
            arguments=placeholders(body),
        )


class Agent(CatalogItem):
    """``.claude/agents/*.md``; ``name`` is the front matter's ``name`` or the file stem."""

    tools: list[str] | None = Field(default=None, description="Front matter `tools`; null means every tool.")
    model: str | None = None

    @classmethod
    def parse(cls, meta: dict[str, Any], body: str, source: SourceName, path: str, name: str) -> Agent:
        description = _required_description(meta)
        tools, model = tools_field(meta, "tools"), text_field(meta, "model")
        name = text_field(meta, "name") or name
        return cls(name=name, description=description, source=source, path=path, tools=tools, model=model)


class SkillList(BaseModel):
    data: list[Skill]
    errors: list[CatalogProblem]


class CommandList(BaseModel):
    data: list[Command]
    errors: list[CatalogProblem]


class AgentList(BaseModel):
    data: list[Agent]
    errors: list[CatalogProblem]


# -- front matter -----------------------------------------------------------------------------------------------

_DESCRIPTION_CHARS = 100
_PLACEHOLDER = re.compile(r"(?<!\\)\$(ARGUMENTS\[\d{1,9}\]|ARGUMENTS|\d{1,9}(?!\w))")
_HEADING = re.compile(r"^#+\s+(\S.*)$")


class Malformed(Exception):
    """A file that cannot be listed; the message is shown to the client as is (it names no server path)."""


def split_front_matter(text: str) -> tuple[str, str]:
    """``(front matter, body)``: the YAML between the leading ``---`` lines (``""`` if there are none) and the rest."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        return "", text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        raise Malformed("front matter has no closing '---' line")
    return "\n".join(lines[1:end]), "\n".join(lines[end + 1 :])


def parse_front_matter(block: str) -> dict[str, Any]:
    """The front matter as a mapping (``yaml.safe_load``: plain data only); :class:`Malformed` otherwise."""
    try:
        meta = yaml.safe_load(block)
    except yaml.MarkedYAMLError as exc:
        where = f" (line {exc.problem_mark.line + 2})" if exc.problem_mark else ""
        raise Malformed(f"front matter is not valid YAML: {exc.problem or exc.context}{where}") from None
    except (yaml.YAMLError, RecursionError):
        raise Malformed("front matter is not valid YAML") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise Malformed("front matter is not a mapping")
    return meta


def text_field(meta: dict[str, Any], key: str) -> str | None:
    """A scalar front matter value as stripped text (``None`` when absent or empty)."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise Malformed(f"front matter '{key}' must be a string")
    return str(value).strip() or None


def split_tools(values: Iterable[str]) -> list[str]:
    """Split tool lists the way the CLI does: at commas and spaces outside parentheses (``Bash(git add:*)``)."""
    tools: list[str] = []
    for value in values:
        current, depth = "", 0
        for char in value:
            if char in ", \t\r\n" and depth == 0:
                if current.strip():
                    tools.append(current.strip())
                current = ""
                continue
            depth += 1 if char == "(" else -1 if char == ")" and depth > 0 else 0
            current += char
        if current.strip():
            tools.append(current.strip())
    return tools


def tools_field(meta: dict[str, Any], key: str) -> list[str] | None:
    """A comma-separated string or a list of strings; ``None`` when absent."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return split_tools([value])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return split_tools(value)
    raise Malformed(f"front matter '{key}' must be a comma-separated string or a list of strings")


def placeholders(body: str) -> list[str]:
    """The argument placeholders a command body uses (``\\$1`` is escaped, not one)."""
    found = {f"${m.group(1)}" for m in _PLACEHOLDER.finditer(body)}

    def order(name: str) -> tuple[int, int]:
        if name == "$ARGUMENTS":
            return (0, 0)
        if name.startswith("$ARGUMENTS["):
            return (1, int(name[11:-1]))
        return (2, int(name[1:]))

    return sorted(found, key=order)


def first_line(body: str) -> str:
    """The CLI's fallback description: the first non-empty line, heading marks removed, at most 100 characters."""
    line = next((s.strip() for s in body.splitlines() if s.strip()), "")
    if match := _HEADING.match(line):
        line = match.group(1)
    return line if len(line) <= _DESCRIPTION_CHARS else line[: _DESCRIPTION_CHARS - 3] + "..."


def _required_description(meta: dict[str, Any]) -> str:
    description = text_field(meta, "description")
    if description is None:
        raise Malformed("front matter has no 'description'")
    return description


def _argument_hint(meta: dict[str, Any]) -> str | None:
    value = meta.get("argument-hint")
    if isinstance(value, list):  # `argument-hint: [message]` is a YAML list; show it as written
        return "[" + ", ".join(str(v) for v in value) + "]"
    return text_field(meta, "argument-hint")
