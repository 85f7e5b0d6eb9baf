"""FastAPI app of the scripted model server: Messages API, script registry and request log.

Endpoints:

``POST /v1/messages`` (any query, e.g. ``?beta=true``)
    Streaming (SSE) or JSON reply. Side calls (see :func:`is_side_call`; e.g. the session-title request,
    sent only without ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``) get fitting text (JSON matching
    ``output_config.format.schema`` when given) and consume no step.
``POST /v1/messages/count_tokens``
    ``{"input_tokens": <estimate>}`` (the CLI calls it for ``get_context_usage()``, once per tool group).
``HEAD /api/hello``
    200 (the CLI's connectivity preflight, sent only without the non-essential-traffic flag).
``POST /_scripts``
    Body ``{"steps": [...], "token"?: str, "session_id"?: str}``; answers ``{"token": ...}``.
``GET /_requests`` (``?session_id=``, ``?token=``, ``?kind=``)
    The recorded requests. ``POST /_reset`` forgets scripts and requests.
Anything else is recorded and answered 404 with an Anthropic error body.

How a main-loop request finds its script (first match wins):

1. user texts, newest first: a ``[[script:...]]`` marker (state keyed by session id + marker) or the
   token of a script registered with ``add_script(token=...)``; a main-loop request then binds its
   session id to that script (a subagent's own marker does not);
2. the script bound to the ``x-claude-code-session-id`` header (``add_script(session_id=...)`` or
   step 1): this is how subagents, which share the parent's session id, find the parent's script;
3. none: the default text (``"Hello from the scripted test model…"``).

Within the script, the lane (main or a subagent tag) picks the step; see ``script``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from .reply import (
    build_reply,
    error_body,
    estimate_tokens,
    example_for_schema,
    sse_frame,
    stream_events,
)
from .script import EXHAUSTED_TEXT, Step
from .state import ModelState, system_text, user_texts

DEFAULT_TEXT = (
    "Hello from the scripted test model. No script was found for this request; put "
    '[[script:[{"text": "..."}]]] in the prompt to script replies.'
)
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})


def _headers(request: Request) -> dict[str, str]:
    return {k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in request.headers.items()}


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _side_text(body: dict[str, Any]) -> str:
    fmt = (body.get("output_config") or {}).get("format") or {}
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if isinstance(schema, dict):
        return json.dumps(example_for_schema(schema))
    return EXHAUSTED_TEXT


def is_side_call(body: dict[str, Any]) -> bool:
    """No tools, and a structured-output format or no thinking config (the title request has both).

    A main-loop request of a run with ``tools=[]`` has no tools either, but keeps its ``thinking``
    config, so it still consumes script steps."""
    if body.get("tools"):
        return False
    output_config = body.get("output_config")
    return (isinstance(output_config, dict) and "format" in output_config) or "thinking" not in body


async def _events(frames: list[bytes], chunk_delay: float) -> AsyncIterator[bytes]:
    if not chunk_delay:  # one write: many small writes meet Nagle + delayed ACK (~40 ms per reply)
        yield b"".join(frames)
        return
    for number, frame in enumerate(frames):
        if number:
            await asyncio.sleep(chunk_delay)
        yield frame


def create_app(state: ModelState | None = None) -> FastAPI:
    """Build the app around ``state`` (a fresh :class:`ModelState` by default), kept as ``app.state.model``."""
    model = state or ModelState()
    app = FastAPI(title="scripted-model-server", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.model = model

    def record(request: Request, kind: str, body: Any) -> dict[str, Any]:
        return model.record(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=_headers(request),
            body=body,
            kind=kind,
        )

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict):
            record(request, "invalid", body)
            return JSONResponse(error_body({"status": 400, "message": "body must be JSON"}), 400)
        if is_side_call(body):
            entry = record(request, "side", body)
            step = Step(blocks=({"type": "text", "text": _side_text(body)},))
        else:
            entry = record(request, "main", body)
            scripted = model.next_step(entry, system_text(body), user_texts(body))
            step = scripted or Step(blocks=({"type": "text", "text": DEFAULT_TEXT},))
        reply = build_reply(step, str(body.get("model", "scripted-model")), body)
        sent = reply.message() if step.error is None else error_body(step.error)
        model.annotate(entry, reply=sent)
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.error is not None and not step.error.get("in_stream"):
            return JSONResponse(sent, status_code=int(step.error["status"]))
        if not body.get("stream"):
            return JSONResponse(reply.message())
        frames = [sse_frame(event) for event in stream_events(reply)]
        return StreamingResponse(
            _events(frames, step.chunk_delay),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "request-id": reply.message_id},
        )

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> Response:
        body = await _body(request)
        record(request, "count_tokens", body)
        return JSONResponse({"input_tokens": estimate_tokens(body or "")})

    @app.post("/_scripts")
    async def add_script(request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or "steps" not in body:
            return JSONResponse({"error": "expected {'steps': [...], 'token'?, 'session_id'?}"}, 400)
        try:
            token = model.add_script(body["steps"], token=body.get("token"), session_id=body.get("session_id"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"token": token})

    @app.get("/_requests")
    async def list_requests(
        session_id: str | None = None, token: str | None = None, kind: str | None = None
    ) -> Response:
        return JSONResponse(model.requests(session_id=session_id, token=token, kind=kind))

    @app.post("/_reset")
    async def reset() -> Response:
        model.reset()
        return JSONResponse({"ok": True})

    @app.api_route("/api/hello", methods=["GET", "HEAD"])
    async def hello(request: Request) -> Response:
        record(request, "hello", None)
        return Response(status_code=200)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def anything_else(request: Request, path: str) -> Response:
        record(request, "unknown", await _body(request))
        return JSONResponse(error_body({"status": 404, "message": f"no route /{path}"}), 404)

    return app
