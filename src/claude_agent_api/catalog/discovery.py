"""Finding skills, slash commands and subagents in ``.claude/`` directories (filesystem only, no HTTP).

Where — a :class:`Source` is one directory whose ``.claude/`` is read, with the jail its files must stay in:

- project: ``cwd`` and each of its parents **up to the key's workspace root, never above it**. The CLI itself
  walks up to the git root or the home directory; above the workspace are other tenants and the server, so those
  directories are neither read nor reported. Nearer directories come first.
- user: the CLI's private HOME for the key (``CliDirs.home``), shown as ``~``.

What: ``skills/*/SKILL.md``, ``commands/**/*.md`` (sub-directories give ``ns:name``), ``agents/*.md``; what the
front matter means is in :mod:`claude_agent_api.catalog.schemas`. Every file is listed, sorted by name, even when
two share a name (the CLI then picks one by its own precedence rules).

Limits: at most :data:`MAX_FILES` directory entries are examined per call (files and sub-directories alike);
files over :data:`MAX_FILE_BYTES` are not read; files are decoded as UTF-8 with replacement characters; front
matter is at most :data:`MAX_FRONT_MATTER_CHARS` per file and :data:`YAML_BUDGET_CHARS` per call (pure-Python
YAML parses about 100 KB/s of adversarial input: this keeps a call to seconds of CPU). An entry whose real path
leaves its jail (a symbolic link pointing out, at any depth) is not followed, and what it points to is never
looked at. Each of these, and bad front matter, is a :class:`CatalogProblem` next to the items that were read —
never an exception. The CLI is more lenient with broken YAML (it retries, and may load such a file without its
front matter); here it is reported so that it can be fixed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from claude_agent_api.catalog.schemas import (
    Agent,
    AgentList,
    CatalogItem,
    CatalogProblem,
    Command,
    CommandList,
    Malformed,
    Skill,
    SkillList,
    SourceName,
    parse_front_matter,
    split_front_matter,
)

MAX_FILES = 1000
MAX_FILE_BYTES = 256 * 1024
MAX_FRONT_MATTER_CHARS = 64 * 1024
YAML_BUDGET_CHARS = 1024 * 1024  # front matter parsed per call: YAML parsing is slow enough to be a CPU sink

Item = TypeVar("Item", bound=CatalogItem)
Parser = Callable[[dict[str, Any], str, SourceName, str, str], Item]


@dataclass(frozen=True)
class Source:
    """One directory whose ``.claude/`` is read; ``jail`` is where every file read must resolve (both resolved)."""

    kind: SourceName
    base: Path
    jail: Path
    prefix: str = ""  # how the jail is written in paths shown to clients: "" (workspace) or "~" (home)

    def show(self, path: Path) -> str:
        relative = path.relative_to(self.jail).as_posix()
        if not self.prefix:
            return relative
        return self.prefix if relative == "." else f"{self.prefix}/{relative}"

    def holds(self, real: Path) -> bool:
        return real == self.jail or self.jail in real.parents

    @property
    def outside(self) -> str:
        jail = "the home directory" if self.kind == "user" else "the workspace"
        return f"leads outside {jail} (symbolic link); not followed"


def project_sources(workspace: Path, cwd: Path) -> list[Source]:
    """``cwd`` and its parents up to ``workspace`` (both resolved, ``cwd`` inside it), nearest first."""
    sources, current = [], cwd
    while True:
        sources.append(Source("project", current, workspace))
        if current == workspace or current == current.parent:
            return sources
        current = current.parent


def user_source(home: Path) -> Source:
    real = Path(os.path.realpath(home))
    return Source("user", real, real, "~")


def read_text(source: Source, path: Path) -> str:
    """Read one file inside ``source``'s jail: a regular file of at most :data:`MAX_FILE_BYTES`, as UTF-8."""
    real = os.path.realpath(path)
    if not source.holds(Path(real)):
        raise Malformed(source.outside)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise Malformed("is not a regular file")
            data = handle.read(MAX_FILE_BYTES + 1) if info.st_size <= MAX_FILE_BYTES else b""
    except OSError as exc:
        raise Malformed(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    if info.st_size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
        raise Malformed(f"is larger than {MAX_FILE_BYTES // 1024} KB")
    return data.decode("utf-8", errors="replace")


@dataclass
class Scan:
    """One discovery call: its budget of directory entries, the directories seen, the problems found."""

    limit: int = MAX_FILES
    problems: list[CatalogProblem] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    stopped: bool = False

    def __post_init__(self) -> None:
        self.left, self.yaml_left = self.limit, YAML_BUDGET_CHARS

    def report(self, source: Source, path: Path, message: str) -> None:
        self.problems.append(CatalogProblem(path=source.show(path), message=message))

    def listdir(self, source: Source, directory: Path) -> list[tuple[str, bool]]:
        """``(name, is_dir)`` of a directory's entries, sorted; nothing if absent, already seen, or out of budget.

        A directory or entry whose real path leaves the jail is reported without looking at what it points to."""
        if self.stopped:
            return []
        real = os.path.realpath(directory)
        if not source.holds(Path(real)):
            self.report(source, directory, source.outside)
            return []
        if real in self.seen or not os.path.isdir(real):
            return []
        self.seen.add(real)
        try:
            with os.scandir(real) as it:
                entries = sorted(islice(it, self.left + 1), key=lambda e: e.name)
        except OSError as exc:
            self.report(source, directory, f"cannot be listed: {exc.strerror or type(exc).__name__}")
            return []
        if len(entries) > self.left:
            entries, self.stopped = entries[: self.left], True
            self.report(source, directory, f"discovery stopped after {self.limit} files; the rest was not read")
        self.left -= len(entries)
        listed = []
        for entry in entries:
            if entry.is_symlink() and not source.holds(Path(os.path.realpath(directory / entry.name))):
                self.report(source, directory / entry.name, source.outside)
            else:
                listed.append((entry.name, _is_dir(entry)))
        return listed

    def collect(self, source: Source, path: Path, parse: Parser[Item], name: str, out: list[Item]) -> None:
        """Read and parse one file into ``out``, or report why it cannot be listed."""
        try:
            block, body = split_front_matter(read_text(source, path))
            if len(block) > MAX_FRONT_MATTER_CHARS:
                raise Malformed(f"front matter is longer than {MAX_FRONT_MATTER_CHARS // 1024}K characters")
            if len(block) > self.yaml_left:
                raise Malformed(
                    f"not read: this request already parsed {YAML_BUDGET_CHARS // 1024}K characters of YAML"
                )
            self.yaml_left -= len(block)
            out.append(parse(parse_front_matter(block), body, source.kind, source.show(path), name))
        except Malformed as exc:
            self.report(source, path, str(exc))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _ordered(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: (i.name, i.source != "project", i.path))


def discover_skills(sources: Iterable[Source], limit: int = MAX_FILES) -> SkillList:
    scan, items = Scan(limit), list[Skill]()
    for source in sources:
        directory = source.base / ".claude" / "skills"
        for name, is_dir in scan.listdir(source, directory):
            path = directory / name / "SKILL.md"
            if is_dir and os.path.lexists(path):
                scan.collect(source, path, Skill.parse, name, items)
    return SkillList(data=_ordered(items), errors=scan.problems)


def discover_commands(sources: Iterable[Source], limit: int = MAX_FILES) -> CommandList:
    scan, items = Scan(limit), list[Command]()
    for source in sources:
        pending: list[tuple[Path, tuple[str, ...]]] = [(source.base / ".claude" / "commands", ())]
        while pending:
            directory, namespace = pending.pop()
            for name, is_dir in scan.listdir(source, directory):
                if is_dir:
                    pending.append((directory / name, (*namespace, name)))
                elif name.endswith(".md") and name != ".md":
                    scan.collect(source, directory / name, Command.parse, ":".join((*namespace, name[:-3])), items)
    return CommandList(data=_ordered(items), errors=scan.problems)


def discover_agents(sources: Iterable[Source], limit: int = MAX_FILES) -> AgentList:
    scan, items = Scan(limit), list[Agent]()
    for source in sources:
        directory = source.base / ".claude" / "agents"
        for name, is_dir in scan.listdir(source, directory):
            if not is_dir and name.endswith(".md") and name != ".md":
                scan.collect(source, directory / name, Agent.parse, name[:-3], items)
    return AgentList(data=_ordered(items), errors=scan.problems)
