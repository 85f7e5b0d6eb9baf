"""Shared state of the scripted model server: registered scripts, session bindings, request log.

The state is used from two threads (the uvicorn loop and the test), so every access takes a lock.
A recorded request is a JSON-serialisable dict::

    {"id": 3, "time": 1700000000.0, "method": "POST", "path": "/v1/messages", "query": "beta=true",
     "headers": {... secrets "<redacted>" ...}, "session_id": "<x-claude-code-session-id or None>",
     "agent_id": "<x-claude-code-agent-id: set on subagent requests, else None>",
     "kind": "main" | "side" | "count_tokens" | "hello" | "unknown" | "invalid", "body": {...JSON...},
     # main requests also get:
     "script": "<token or marker-…>" | None, "lane": None | "<agent tag>", "step": 0, "exhausted": False,
     "reply": {...the message (or error body) that was sent...}}
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
import uuid
from typing import Any

from .script import EXHAUSTED_TEXT, Script, Step, find_markers

SESSION_HEADER = "x-claude-code-session-id"
AGENT_HEADER = "x-claude-code-agent-id"


def system_text(body: dict[str, Any]) -> str:
    """The system prompt as one string (it may be a string or a list of text blocks)."""
    system = body.get("system")
    if isinstance(system, list):
        return "\n".join(str(block.get("text", "")) for block in system if isinstance(block, dict))
    return system if isinstance(system, str) else ""


def user_texts(body: dict[str, Any]) -> list[str]:
    """The text of every user message, oldest first (text blocks joined; tool results left out)."""
    texts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
            texts.append("\n".join(str(part) for part in parts))
    return texts


class ModelState:
    """Scripts, session bindings and the request log of one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._by_token: dict[str, Script] = {}
        self._by_session: dict[str, Script] = {}
        self._by_marker: dict[tuple[str, str], Script] = {}

    def add_script(self, steps: list[Any], token: str | None = None, session_id: str | None = None) -> str:
        """Register ``steps``; requests whose user text contains ``token`` (or whose session header is
        ``session_id``) use it. Returns the token (a fresh ``script-<hex>`` when not given)."""
        token = token or f"script-{uuid.uuid4().hex[:12]}"
        script = Script.from_json(steps, key=token)
        with self._lock:
            self._by_token[token] = script
            if session_id:
                self._by_session[session_id] = script
        return token

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._by_token.clear()
            self._by_session.clear()
            self._by_marker.clear()

    def record(self, **fields: Any) -> dict[str, Any]:
        """Append a request to the log; the returned dict may still be completed by the caller."""
        headers: dict[str, str] = fields.get("headers", {})
        with self._lock:
            entry = {
                "id": len(self._records),
                "time": time.time(),
                "session_id": headers.get(SESSION_HEADER),
                "agent_id": headers.get(AGENT_HEADER),
            }
            entry.update(fields)
            self._records.append(entry)
        return entry

    def annotate(self, entry: dict[str, Any], **fields: Any) -> None:
        """Add fields to a recorded request (under the lock, as the test thread may be reading)."""
        with self._lock:
            entry.update(fields)

    def requests(
        self, session_id: str | None = None, token: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Recorded requests (deep copies), optionally filtered by session id, script token or kind."""
        with self._lock:
            found = [
                entry
                for entry in self._records
                if (session_id is None or entry.get("session_id") == session_id)
                and (token is None or entry.get("script") == token)
                and (kind is None or entry.get("kind") == kind)
            ]
            return copy.deepcopy(found)

    def _resolve(self, session_id: str | None, texts: list[str], bind: bool) -> Script | None:
        for text in reversed(texts):
            markers = find_markers(text)
            script: Script | None
            with self._lock:
                if markers:
                    raw, steps = markers[-1]
                    key = (session_id or "", raw)
                    if key not in self._by_marker:
                        digest = hashlib.sha1(raw.encode()).hexdigest()[:10]
                        self._by_marker[key] = Script.from_json(steps, key=f"marker-{digest}")
                    script = self._by_marker[key]
                else:
                    script = next((s for tok, s in self._by_token.items() if tok in text), None)
                if script is not None:
                    if session_id and bind:
                        self._by_session[session_id] = script
                    return script
        with self._lock:
            return self._by_session.get(session_id) if session_id else None

    def next_step(self, entry: dict[str, Any], system: str, texts: list[str]) -> Step | None:
        """The step answering a main-loop request (recorded into ``entry``); None when no script applies."""
        subagent = bool(entry.get("agent_id")) or "cc_is_subagent=true" in system
        try:  # only main-loop requests bind the session: a subagent's own marker must not capture it
            script = self._resolve(entry.get("session_id"), texts, bind=not subagent)
        except ValueError as exc:
            self.annotate(entry, script=None, lane=None, step=None, exhausted=False)
            return Step(error={"status": 400, "type": "invalid_request_error", "message": str(exc)})
        if script is None:
            self.annotate(entry, script=None, lane=None, step=None, exhausted=False)
            return None
        lane = script.lane_for(system, texts[0] if texts else "", subagent)
        index, step = script.next_step(lane)
        self.annotate(entry, script=script.key, lane=lane, step=index, exhausted=step is None)
        return step or Step(blocks=({"type": "text", "text": EXHAUSTED_TEXT},))
