"""Script format for the scripted model server.

A *script* is a JSON list of *steps*. Every model request of the agent loop consumes the next step of
its lane; when a lane is exhausted the server answers a plain ``"Done."`` ``end_turn``. Side calls
(no ``tools`` and a structured-output format, e.g. the session-title request; see ``app.is_side_call``)
never consume steps.

A step is a JSON object (a bare string ``"hi"`` is shorthand for ``{"text": "hi"}``). Keys:

``text`` (str)
    A text block.
``thinking`` (str)
    A thinking block (streamed as ``thinking_delta`` + ``signature_delta``).
``tool_use`` (object or list of objects ``{"name": str, "input": object, "id"?: str}``)
    One or more tool calls; ``stop_reason`` becomes ``tool_use``. Inputs are streamed as
    ``input_json_delta`` fragments. Block order is thinking, text, tool_use.
``content`` (list of blocks)
    Explicit block order instead of the three keys above, e.g.
    ``[{"type": "text", "text": "a"}, {"type": "tool_use", "name": "Bash", "input": {...}}]``.
``error`` (object ``{"status": int, "type"?: str, "message"?: str, "in_stream"?: bool}``)
    Answer with an HTTP error (Anthropic error JSON). ``type`` defaults from the status
    (401 ``authentication_error``, 429 ``rate_limit_error``, 500 ``api_error``, 529 ``overloaded_error``…).
    With ``"in_stream": true`` the response is a 200 stream that sends ``message_start`` and then an
    ``error`` event.
``delay`` (seconds)
    Wait before the response starts (a step with only ``delay`` answers "Done." afterwards).
``chunk_delay`` (seconds)
    Wait between SSE events (slow streaming).
``usage`` (object)
    Override reported usage, e.g. ``{"input_tokens": 10, "output_tokens": 5}``; defaults are
    non-zero estimates from the request and reply sizes.
``stop_reason`` (str)
    Override the stop reason (default ``tool_use`` if the step has tool calls, else ``end_turn``).
``agent`` (str)
    Put the step in a subagent lane (see below).

Lanes (subagents): steps without ``agent`` form the main lane. Steps tagged ``"agent": "TAG"`` form the
lane ``TAG``. A *subagent request* (header ``x-claude-code-agent-id``, or ``cc_is_subagent=true`` in the
system prompt) belongs to lane ``TAG`` when ``TAG`` occurs in its system prompt (which contains the
``AgentDefinition.prompt``) or in its first user message (the ``prompt`` input of the ``Agent`` tool call);
tags are tried in script order, and ``"agent": "*"`` catches any other subagent request. Subagent requests
matching no tag, and all main-loop requests, use the main lane. Each lane has its own cursor, so a
background subagent and the main loop interleave deterministically. Subagents share the parent's
``x-claude-code-session-id``, so they find the parent's script without a marker of their own.

Example (the ``checker`` agent is defined with ``AgentDefinition(prompt="You are the checker. ...")``)::

    [
      {"tool_use": {"name": "Write", "input": {"file_path": "/tmp/w/a.txt", "content": "hi"}}},
      {"tool_use": {"name": "Agent", "input": {"subagent_type": "checker", "description": "check",
                                                "prompt": "check a.txt", "run_in_background": false}}},
      {"agent": "You are the checker", "tool_use": {"name": "Read", "input": {"file_path": "/tmp/w/a.txt"}}},
      {"agent": "You are the checker", "text": "a.txt looks fine"},
      {"text": "All done", "usage": {"input_tokens": 50, "output_tokens": 7}}
    ]

Where a script comes from (details in ``app``): a prompt carries one as ``[[script:<json list>]]``
anywhere in a user text (parsed with ``raw_decode``, so ``]]`` inside JSON strings is fine; its cursors are
keyed by the ``x-claude-code-session-id`` header), or a test registers one with ``add_script(steps)`` /
``POST /_scripts`` and puts the returned token in the prompt (or registers it for a ``session_id``).
An ``Agent`` tool call whose ``prompt`` carries its own marker gives that subagent a separate script.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

MARKER_PREFIX = "[[script:"
MARKER_SUFFIX = "]]"
EXHAUSTED_TEXT = "Done."
ANY_AGENT = "*"

_STEP_KEYS = frozenset(
    {"text", "thinking", "tool_use", "content", "error", "delay", "chunk_delay", "usage", "stop_reason", "agent"}
)
_BLOCK_TYPES = frozenset({"text", "thinking", "tool_use"})


@dataclass(frozen=True)
class Step:
    """One scripted reply."""

    blocks: tuple[dict[str, Any], ...] = ()
    error: dict[str, Any] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    agent: str | None = None

    @property
    def has_tool_use(self) -> bool:
        return any(block["type"] == "tool_use" for block in self.blocks)


def _block(kind: str, value: Any) -> dict[str, Any]:
    if kind == "text":
        return {"type": "text", "text": str(value)}
    if kind == "thinking":
        return {"type": "thinking", "thinking": str(value)}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"tool_use needs {{'name': str, 'input': object}}, got {value!r}")
    tool_input = value.get("input", {})
    if not isinstance(tool_input, dict):
        raise ValueError(f"tool_use input must be an object, got {tool_input!r}")
    block: dict[str, Any] = {"type": "tool_use", "name": value["name"], "input": tool_input}
    if "id" in value:
        block["id"] = str(value["id"])
    return block


def parse_step(raw: Any) -> Step:
    """Validate one step (dict or shorthand string) and normalise it into a :class:`Step`."""
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict):
        raise ValueError(f"a step must be an object or a string, got {raw!r}")
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        raise ValueError(f"unknown step keys {sorted(unknown)}; allowed: {sorted(_STEP_KEYS)}")
    blocks: list[dict[str, Any]] = []
    if "content" in raw:
        if any(key in raw for key in ("text", "thinking", "tool_use")):
            raise ValueError("use either 'content' or text/thinking/tool_use, not both")
        for item in raw["content"]:
            if not isinstance(item, dict) or item.get("type") not in _BLOCK_TYPES:
                raise ValueError(f"content blocks need a type in {sorted(_BLOCK_TYPES)}, got {item!r}")
            value = item if item["type"] == "tool_use" else item.get(item["type"], "")
            blocks.append(_block(item["type"], value))
    else:
        if "thinking" in raw:
            blocks.append(_block("thinking", raw["thinking"]))
        if "text" in raw:
            blocks.append(_block("text", raw["text"]))
        calls = raw.get("tool_use", [])
        blocks.extend(_block("tool_use", call) for call in (calls if isinstance(calls, list) else [calls]))
    error = raw.get("error")
    if not blocks and error is None:
        blocks.append(_block("text", EXHAUSTED_TEXT))
    if error is not None and (not isinstance(error, dict) or not isinstance(error.get("status"), int)):
        raise ValueError(f"error needs {{'status': int, ...}}, got {error!r}")
    usage = raw.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise ValueError(f"usage must be an object, got {usage!r}")
    return Step(
        blocks=tuple(blocks),
        error=error,
        delay=float(raw.get("delay", 0.0)),
        chunk_delay=float(raw.get("chunk_delay", 0.0)),
        usage=usage,
        stop_reason=raw.get("stop_reason"),
        agent=raw.get("agent"),
    )


@dataclass
class Script:
    """A parsed script with one cursor per lane. Thread-safe."""

    steps: list[Step]
    key: str = ""
    cursors: dict[str | None, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_json(cls, raw: Any, key: str = "") -> Script:
        items = raw if isinstance(raw, list) else [raw]
        return cls(steps=[parse_step(item) for item in items], key=key)

    @property
    def agent_tags(self) -> list[str]:
        return list(dict.fromkeys(step.agent for step in self.steps if step.agent))

    def lane_for(self, system_text: str, first_user_text: str, subagent: bool) -> str | None:
        """The lane of a request: for subagent requests the first agent tag found in the system prompt or
        first user text (else ``"*"`` when the script has such steps); main-loop requests use lane None."""
        if not subagent:
            return None
        user_text = strip_markers(first_user_text)
        tags = self.agent_tags
        for tag in tags:
            if tag != ANY_AGENT and (tag in system_text or tag in user_text):
                return tag
        return ANY_AGENT if ANY_AGENT in tags else None

    def next_step(self, lane: str | None) -> tuple[int, Step | None]:
        """Consume the next step of ``lane``: (index within the lane, step or None when exhausted)."""
        with self._lock:
            lane_steps = [step for step in self.steps if step.agent == lane]
            index = self.cursors.get(lane, 0)
            self.cursors[lane] = index + 1
        return index, lane_steps[index] if index < len(lane_steps) else None

    def remaining(self, lane: str | None = None) -> int:
        with self._lock:
            total = sum(1 for step in self.steps if step.agent == lane)
            return max(0, total - self.cursors.get(lane, 0))


def find_markers(text: str) -> list[tuple[str, Any]]:
    """All ``[[script:<json>]]`` markers in ``text`` as (raw marker text, parsed JSON)."""
    found: list[tuple[str, Any]] = []
    decoder = json.JSONDecoder()
    start = text.find(MARKER_PREFIX)
    while start != -1:
        json_start = start + len(MARKER_PREFIX)
        try:
            value, end = decoder.raw_decode(text, json_start)
        except json.JSONDecodeError as exc:
            raise ValueError(f"bad script marker at offset {start}: {exc}") from exc
        if not text.startswith(MARKER_SUFFIX, end):
            raise ValueError(f"script marker at offset {start} is not closed with {MARKER_SUFFIX!r}")
        found.append((text[start : end + len(MARKER_SUFFIX)], value))
        start = text.find(MARKER_PREFIX, end)
    return found


def strip_markers(text: str) -> str:
    """``text`` without its script markers (unparseable markers are left alone)."""
    try:
        for marker, _ in find_markers(text):
            text = text.replace(marker, "")
    except ValueError:
        return text
    return text


def script_marker(steps: list[Any]) -> str:
    """Build the prompt marker for ``steps`` (compact JSON, safe to embed in a prompt)."""
    return MARKER_PREFIX + json.dumps(steps, separators=(",", ":")) + MARKER_SUFFIX
