"""Turn a scripted :class:`~tests.model_server.script.Step` into Anthropic Messages API replies.

``stream_events`` yields the SSE events of a streaming reply in protocol order::

    message_start (message.usage) → ping →
    per block: content_block_start → content_block_delta… → content_block_stop →
    message_delta (stop_reason, usage.output_tokens) → message_stop

Text is split into a few ``text_delta`` chunks, tool inputs into a few ``input_json_delta`` fragments
(``partial_json``) that concatenate to the full JSON, thinking into ``thinking_delta`` + ``signature_delta``.
``Reply.message`` is the equivalent non-streaming JSON body, ``error_body`` an Anthropic error body.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .script import Step

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
FAKE_SIGNATURE = "c2NyaXB0ZWQtbW9kZWwtc2lnbmF0dXJl"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def estimate_tokens(value: Any) -> int:
    """A rough, never-zero token estimate (4 characters per token)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return max(1, len(text) // 4)


@dataclass(frozen=True)
class Reply:
    """A concrete reply to one request: blocks with ids, usage and stop reason."""

    message_id: str
    model: str
    blocks: list[dict[str, Any]]
    usage: dict[str, int]
    stop_reason: str
    error: dict[str, Any] | None = None

    def message(self) -> dict[str, Any]:
        """The non-streaming JSON body (also what the stream adds up to)."""
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.blocks,
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": self.usage,
        }


def build_reply(step: Step, model: str, request_body: dict[str, Any]) -> Reply:
    """Materialise ``step``: tool_use blocks get ids, thinking blocks a signature, usage is filled in."""
    blocks: list[dict[str, Any]] = []
    for block in step.blocks:
        if block["type"] == "tool_use":
            blocks.append({**block, "id": block.get("id") or new_id("toolu")})
        elif block["type"] == "thinking":
            blocks.append({**block, "signature": FAKE_SIGNATURE})
        else:
            blocks.append(dict(block))
    usage = {
        "input_tokens": estimate_tokens({k: request_body.get(k) for k in ("system", "messages")}),
        "output_tokens": estimate_tokens(blocks) if blocks else 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    usage.update(step.usage or {})
    stop_reason = step.stop_reason or ("tool_use" if step.has_tool_use else "end_turn")
    return Reply(new_id("msg"), model, blocks, usage, stop_reason, step.error)


def _chunks(text: str, parts: int = 3) -> list[str]:
    """Split ``text`` into up to ``parts`` non-empty pieces (one piece for short text)."""
    if len(text) < parts * 2:
        return [text]
    size = -(-len(text) // parts)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _block_events(index: int, block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
        for piece in _chunks(block["text"]):
            yield {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
    elif kind == "thinking":
        start: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        yield {"type": "content_block_start", "index": index, "content_block": start}
        for piece in _chunks(block["thinking"]):
            delta = {"type": "thinking_delta", "thinking": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        delta = {"type": "signature_delta", "signature": block["signature"]}
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        yield {"type": "content_block_start", "index": index, "content_block": start}
        for piece in _chunks(json.dumps(block["input"])):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def stream_events(reply: Reply) -> Iterator[dict[str, Any]]:
    """The SSE events (dicts with a ``type``) of a streaming ``reply``."""
    shell = {**reply.message(), "content": [], "stop_reason": None, "usage": {**reply.usage, "output_tokens": 1}}
    yield {"type": "message_start", "message": shell}
    if reply.error is not None:  # only reached for in-stream errors
        yield error_body(reply.error)
        return
    yield {"type": "ping"}
    for index, block in enumerate(reply.blocks):
        yield from _block_events(index, block)
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    yield {"type": "message_delta", "delta": delta, "usage": {"output_tokens": reply.usage["output_tokens"]}}
    yield {"type": "message_stop"}


def error_body(error: dict[str, Any]) -> dict[str, Any]:
    status = int(error.get("status", 500))
    kind = error.get("type") or ERROR_TYPES.get(status, "api_error")
    message = error.get("message") or f"scripted {kind} ({status})"
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req")}


def sse_frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def example_for_schema(schema: dict[str, Any], name: str = "") -> Any:
    """A small value that satisfies a simple JSON schema (used to answer structured side calls)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: example_for_schema(sub, key) for key, sub in props.items()}
    if kind == "array" or (kind is None and "items" in schema):
        return [example_for_schema(schema["items"], name)] if isinstance(schema.get("items"), dict) else []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "Scripted session" if name == "title" else f"scripted {name or 'value'}"
