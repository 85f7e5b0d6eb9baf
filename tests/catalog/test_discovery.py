"""Discovery on a real temp directory: what is listed, what is reported, what is never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claude_agent_api.catalog.discovery import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_FRONT_MATTER_CHARS,
    YAML_BUDGET_CHARS,
    Source,
    discover_agents,
    discover_commands,
    discover_skills,
    project_sources,
    user_source,
)
from claude_agent_api.catalog.schemas import (
    Malformed,
    first_line,
    parse_front_matter,
    placeholders,
    split_front_matter,
    split_tools,
)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path.resolve()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path.resolve()


def sources(ws: Path, home: Path, cwd: Path | None = None) -> list[Source]:
    return [*project_sources(ws, cwd or ws), user_source(home)]


def test_skills_are_listed_exactly_with_names_descriptions_sources_and_paths(ws: Path, home: Path) -> None:
    write(
        ws / ".claude/skills/pdf/SKILL.md",
        "---\nname: pdf-tools\ndescription: Fill PDF forms\nallowed-tools: Read, Bash(python -m pdf:*)\n---\nBody",
    )
    write(ws / ".claude/skills/notes/SKILL.md", "---\ndescription: Take notes\n---\n")
    (ws / ".claude/skills/empty").mkdir()  # no SKILL.md: not a skill
    write(ws / ".claude/skills/README.md", "not a skill directory")
    write(home / ".claude/skills/mine/SKILL.md", "---\ndescription: My own skill\n---\n")

    found = discover_skills(sources(ws, home))

    assert found.errors == []
    assert [item.model_dump() for item in found.data] == [
        {"name": "mine", "description": "My own skill", "source": "user", "path": "~/.claude/skills/mine/SKILL.md",
         "allowed_tools": None},
        {"name": "notes", "description": "Take notes", "source": "project", "path": ".claude/skills/notes/SKILL.md",
         "allowed_tools": None},
        {"name": "pdf-tools", "description": "Fill PDF forms", "source": "project",
         "path": ".claude/skills/pdf/SKILL.md", "allowed_tools": ["Read", "Bash(python -m pdf:*)"]},
    ]  # fmt: skip


def test_commands_are_namespaced_by_subdirectory_and_describe_their_arguments(ws: Path, home: Path) -> None:
    write(
        ws / ".claude/commands/deploy.md",
        "---\ndescription: Deploy it\nargument-hint: <env> [tag]\nallowed-tools: [Bash(git push:*), Read]\n"
        "model: claude-sonnet-4-5\n---\nDeploy $1 at $ARGUMENTS[1]; all: $ARGUMENTS, not \\$2, not $3x, $0.\n",
    )
    write(ws / ".claude/commands/frontend/component.md", "\n\n# Make a React component\n\nUse $ARGUMENTS.\n")
    write(ws / ".claude/commands/a/b/deep.md", "---\nargument-hint: [message]\n---\nDeep one\n")
    write(ws / ".claude/commands/notes.txt", "not a command")
    write(home / ".claude/commands/mine.md", "")

    found = discover_commands(sources(ws, home))

    assert found.errors == []
    assert [(c.name, c.description, c.source, c.path) for c in found.data] == [
        ("a:b:deep", "Deep one", "project", ".claude/commands/a/b/deep.md"),
        ("deploy", "Deploy it", "project", ".claude/commands/deploy.md"),
        ("frontend:component", "Make a React component", "project", ".claude/commands/frontend/component.md"),
        ("mine", "", "user", "~/.claude/commands/mine.md"),
    ]
    deep, deploy, component, mine = found.data
    assert deploy.argument_hint == "<env> [tag]"
    assert deploy.allowed_tools == ["Bash(git push:*)", "Read"]
    assert deploy.model == "claude-sonnet-4-5"
    assert deploy.arguments == ["$ARGUMENTS", "$ARGUMENTS[1]", "$0", "$1"]
    assert (component.arguments, component.argument_hint, component.model) == (["$ARGUMENTS"], None, None)
    assert deep.argument_hint == "[message]"
    assert mine.arguments == []


def test_agents_take_tools_as_string_or_list(ws: Path, home: Path) -> None:
    write(
        ws / ".claude/agents/reviewer.md", "---\ndescription: Reviews code\ntools: Read, Grep Glob\nmodel: haiku\n---\n"
    )
    write(ws / ".claude/agents/helper.md", "---\nname: best-helper\ndescription: Helps\ntools: [Read, Edit]\n---\n")
    write(ws / ".claude/agents/nested/ignored.md", "---\ndescription: only agents/*.md are read\n---\n")
    write(home / ".claude/agents/mine.md", "---\ndescription: Mine\n---\nYou are mine.")

    found = discover_agents(sources(ws, home))

    assert found.errors == []
    assert [item.model_dump() for item in found.data] == [
        {"name": "best-helper", "description": "Helps", "source": "project", "path": ".claude/agents/helper.md",
         "tools": ["Read", "Edit"], "model": None},
        {"name": "mine", "description": "Mine", "source": "user", "path": "~/.claude/agents/mine.md",
         "tools": None, "model": None},
        {"name": "reviewer", "description": "Reviews code", "source": "project", "path": ".claude/agents/reviewer.md",
         "tools": ["Read", "Grep", "Glob"], "model": "haiku"},
    ]  # fmt: skip


def test_malformed_files_are_reported_with_their_paths_and_the_others_still_listed(ws: Path, home: Path) -> None:
    skills = ws / ".claude/skills"
    write(skills / "good/SKILL.md", "---\ndescription: Good\n---\n")
    write(skills / "bad-yaml/SKILL.md", "---\ndescription: [unclosed\n---\n")
    write(skills / "a-list/SKILL.md", "---\n- just\n- a list\n---\n")
    write(skills / "no-description/SKILL.md", "---\nname: x\n---\nbody\n")
    write(skills / "unclosed/SKILL.md", "---\ndescription: never closed\n")
    write(skills / "huge/SKILL.md", "---\ndescription: big\n---\n" + "x" * MAX_FILE_BYTES)
    write(skills / "bad-tools/SKILL.md", "---\ndescription: d\nallowed-tools: {Read: yes}\n---\n")
    write(skills / "python-tag/SKILL.md", "---\ndescription: !!python/object/apply:os.system [echo hi]\n---\n")
    (skills / "dangling").mkdir()
    os.symlink(skills / "dangling/missing.md", skills / "dangling/SKILL.md")
    os.mkfifo(skills / "fifo-dir-placeholder")  # not a directory: ignored, and never opened
    (skills / "fifo").mkdir()
    os.mkfifo(skills / "fifo/SKILL.md")
    write(home / ".claude/skills/binary/SKILL.md", b"---\ndescription: caf\xe9 \xff\n---\n")

    found = discover_skills(sources(ws, home))

    assert [(s.name, s.description, s.source) for s in found.data] == [
        ("binary", "caf\ufffd \ufffd", "user"),
        ("good", "Good", "project"),
    ]
    assert {(e.path, e.message) for e in found.errors} == {
        (".claude/skills/a-list/SKILL.md", "front matter is not a mapping"),
        (".claude/skills/bad-tools/SKILL.md",
         "front matter 'allowed-tools' must be a comma-separated string or a list of strings"),
        (".claude/skills/bad-yaml/SKILL.md",
         "front matter is not valid YAML: expected ',' or ']', but got '<stream end>' (line 2)"),
        (".claude/skills/dangling/SKILL.md", "cannot be read: No such file or directory"),
        (".claude/skills/fifo/SKILL.md", "is not a regular file"),
        (".claude/skills/huge/SKILL.md", "is larger than 256 KB"),
        (".claude/skills/no-description/SKILL.md", "front matter has no 'description'"),
        (".claude/skills/python-tag/SKILL.md",
         "front matter is not valid YAML: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/object/apply:os.system' (line 2)"),
        (".claude/skills/unclosed/SKILL.md", "front matter has no closing '---' line"),
    }  # fmt: skip


def test_symlinks_that_leave_the_jail_are_reported_and_not_followed(tmp_path: Path, ws: Path, home: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "agent.md", "---\ndescription: SECRET outside agent\n---\n")
    write(outside / "skill/SKILL.md", "---\ndescription: SECRET outside skill\n---\n")
    write(outside / "commands/leak.md", "SECRET outside command\n")
    write(ws / "shared/agent.md", "---\ndescription: Linked from inside\n---\n")
    (ws / ".claude/agents").mkdir(parents=True)
    os.symlink(outside / "agent.md", ws / ".claude/agents/escape.md")
    os.symlink(tmp_path / "does-not-exist.md", ws / ".claude/agents/dangling-out.md")
    os.symlink(ws / "shared/agent.md", ws / ".claude/agents/inside.md")
    (ws / ".claude/skills").mkdir()
    os.symlink(outside / "skill", ws / ".claude/skills/escape")
    os.symlink(outside / "commands", ws / ".claude/commands")
    (home / ".claude/agents").mkdir(parents=True)
    os.symlink(ws / "shared/agent.md", home / ".claude/agents/to-workspace.md")  # outside the home jail

    agents = discover_agents(sources(ws, home))
    skills = discover_skills(sources(ws, home))
    commands = discover_commands(sources(ws, home))

    assert [(a.name, a.description, a.path) for a in agents.data] == [
        ("inside", "Linked from inside", ".claude/agents/inside.md")
    ]
    out = "leads outside the workspace (symbolic link); not followed"
    assert [(e.path, e.message) for e in agents.errors] == [
        (".claude/agents/dangling-out.md", out),
        (".claude/agents/escape.md", out),
        ("~/.claude/agents/to-workspace.md", "leads outside the home directory (symbolic link); not followed"),
    ]
    assert (skills.data, [(e.path, e.message) for e in skills.errors]) == ([], [(".claude/skills/escape", out)])
    assert (commands.data, [(e.path, e.message) for e in commands.errors]) == ([], [(".claude/commands", out)])
    assert "SECRET" not in agents.model_dump_json() + skills.model_dump_json() + commands.model_dump_json()


def test_project_directories_are_read_from_cwd_up_to_the_workspace_and_never_above(tmp_path: Path, ws: Path) -> None:
    write(tmp_path / ".claude/commands/above.md", "Above the workspace")
    write(ws / ".claude/commands/root.md", "At the root")
    write(ws / "app/.claude/commands/app.md", "In app")
    write(ws / "app/src/.claude/commands/src.md", "In src")
    write(ws / "other/.claude/commands/other.md", "A sibling")

    cwd = ws / "app/src"
    found = discover_commands(project_sources(ws, cwd))

    assert [s.base for s in project_sources(ws, cwd)] == [cwd, ws / "app", ws]
    assert [(c.name, c.path) for c in found.data] == [
        ("app", "app/.claude/commands/app.md"),
        ("root", ".claude/commands/root.md"),
        ("src", "app/src/.claude/commands/src.md"),
    ]


def test_directory_loops_are_read_once(ws: Path, home: Path) -> None:
    write(ws / ".claude/commands/tools/run.md", "Run")
    os.symlink(ws / ".claude/commands", ws / ".claude/commands/tools/again")

    found = discover_commands(project_sources(ws, ws))

    assert ([c.name for c in found.data], found.errors) == (["tools:run"], [])


def test_a_scan_stops_after_the_file_budget_and_says_so(ws: Path, home: Path) -> None:
    for index in range(MAX_FILES + 1):
        write(ws / f".claude/commands/c{index:04d}.md", f"Command {index}")
    write(home / ".claude/commands/late.md", "Never reached")

    found = discover_commands(sources(ws, home))

    assert len(found.data) == MAX_FILES
    assert all(c.source == "project" for c in found.data)
    assert [(e.path, e.message) for e in found.errors] == [
        (".claude/commands", f"discovery stopped after {MAX_FILES} files; the rest was not read")
    ]
    small = discover_commands(sources(ws, home), limit=3)
    assert len(small.data) == 3
    assert [e.message for e in small.errors] == ["discovery stopped after 3 files; the rest was not read"]


def test_yaml_parsed_per_file_and_per_call_is_bounded(ws: Path, home: Path) -> None:
    write(ws / ".claude/agents/long.md", f"---\ndescription: {'x' * MAX_FRONT_MATTER_CHARS}\n---\n")
    size = MAX_FRONT_MATTER_CHARS - 100
    fits = YAML_BUDGET_CHARS // (size + len("description: "))
    for index in range(fits + 1):
        write(ws / f".claude/agents/a{index:02d}.md", f"---\ndescription: {'y' * size}\n---\n")

    found = discover_agents(project_sources(ws, ws))

    assert len(found.data) == fits
    assert [(e.path, e.message) for e in found.errors] == [
        (f".claude/agents/a{fits:02d}.md", f"not read: this request already parsed {YAML_BUDGET_CHARS // 1024}K "
         "characters of YAML"),
        (".claude/agents/long.md", f"front matter is longer than {MAX_FRONT_MATTER_CHARS // 1024}K characters"),
    ]  # fmt: skip


def test_front_matter_parsing() -> None:
    assert split_front_matter("\ufeff---\nname: x\n---\nbody\nmore") == ("name: x", "body\nmore")
    assert split_front_matter("---\n---\nbody") == ("", "body")
    assert split_front_matter("no front matter\n---\n") == ("", "no front matter\n---\n")
    with pytest.raises(Malformed, match="no closing"):
        split_front_matter("---\nname: x\n")
    assert parse_front_matter("") == {}
    assert parse_front_matter("name: x\ntools: [a, b]") == {"name": "x", "tools": ["a", "b"]}
    with pytest.raises(Malformed, match="not a mapping"):
        parse_front_matter("just text")
    with pytest.raises(Malformed, match="not valid YAML"):
        parse_front_matter("[" * 5000)


def test_tool_lists_split_like_the_cli() -> None:
    assert split_tools(["Read, Write  Bash(git add:*), Bash(npm run test, lint)"]) == [
        "Read",
        "Write",
        "Bash(git add:*)",
        "Bash(npm run test, lint)",
    ]
    assert split_tools(["Read", "Grep, Glob", ""]) == ["Read", "Grep", "Glob"]


def test_placeholders_and_fallback_descriptions() -> None:
    assert placeholders("$2 $10 $1 $ARGUMENTS[2] $ARGUMENTS $1") == ["$ARGUMENTS", "$ARGUMENTS[2]", "$1", "$2", "$10"]
    assert placeholders("costs \\$5, $HOME, $1abc, $" + "9" * 5000) == []
    assert first_line("\n  \n## Heading text  \nnext") == "Heading text"
    assert first_line("x" * 150) == "x" * 97 + "..."
    assert first_line("") == ""
