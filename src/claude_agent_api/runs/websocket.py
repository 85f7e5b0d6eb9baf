"""``WS /api/v1/query/ws``: the same runs, events and controls as REST, in both directions on one connection.

Handshake: the API key in ``X-API-Key`` / ``Authorization: Bearer`` (or, for browsers, a first message
``{"type": "auth", "api_key": ...}`` within ``ws_auth_timeout_seconds``), and the ``Origin`` (when sent) must be
one of the allowed origins — CORS middleware does not cover WebSockets.

Client → server (``ref`` is optional and echoed back):

- ``query`` (a ``POST /query`` body), ``resume`` (``session_id`` + a ``/resume`` body): start a run and
  stream it; ``ack`` carries ``session_id`` and ``run_id``.
- ``subscribe`` (``session_id``, optional ``run_id``, ``after``): rejoin a run's stream after a sequence number.
- ``interrupt``, ``permission_response`` (``request_id``, ``decision``, …), ``answer`` (``question_id``,
  ``answers``), ``control`` (``permission_mode`` / ``model``): as their REST counterparts, each with
  ``session_id``.
- ``ping``.

Server → client: ``{"type": "event", "event": <name>, "seq": n, "run_id", "session_id", "data": {...}}`` for every
run event (the names of :mod:`.events`), ``ack``, ``error`` (``code``, ``message``, ``details``, ``ref``),
``pong``.

Close codes: ``4401`` authentication failed or missing, ``4403`` origin not allowed, ``4404`` a session that is
not the caller's (or does not exist), ``4408`` no authentication within the time allowed, ``1001`` the server is
shutting down (reconnect and ``subscribe`` from the last sequence number), ``1011`` internal error.

Each connection's outgoing queue is bounded: a client that reads slowly makes its subscriptions wait (they
read the run's log at the client's pace) instead of growing the server's memory; runs are not slowed down.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from claude_agent_api.auth.dependencies import credential_from_headers
from claude_agent_api.auth.service import ApiKeyService, Principal
from claude_agent_api.errors import AppError
from claude_agent_api.kit.addresses import client_address
from claude_agent_api.kit.database import unit_of_work
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.runs.manager import RunHandle
from claude_agent_api.runs.schemas import PromptRequest, QueryRequest
from claude_agent_api.runs.ws_commands import Commands, SessionNotYours
from claude_agent_api.state import AppState

router = APIRouter(prefix=API_PREFIX, tags=["runs"])
log = structlog.get_logger("claude_agent_api.websocket")

OUTBOX_SIZE = 256
CLOSE_AUTH, CLOSE_ORIGIN, CLOSE_NOT_FOUND, CLOSE_AUTH_TIMEOUT = 4401, 4403, 4404, 4408


def _validation_details(exc: ValidationError) -> dict[str, Any]:
    return {
        "errors": [
            {"field": ".".join(str(p) for p in e["loc"]), "loc": list(e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
    }


class Connection:
    def __init__(self, websocket: WebSocket, state: AppState, principal: Principal) -> None:
        self.ws = websocket
        self.state = state
        self.principal = principal
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=OUTBOX_SIZE)
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.cancel_on_close: set[str] = set()
        self.commands = Commands(state, principal)

    async def send(self, message: dict[str, Any]) -> None:
        await self.outbox.put(message)

    async def error(self, ref: Any, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        await self.send({"type": "error", "ref": ref, "code": code, "message": message, "details": details or {}})

    async def writer(self) -> None:
        while True:
            await self.ws.send_json(await self.outbox.get())

    async def follow(self, handle: RunHandle, after: int) -> None:
        async for entry in self.state.run_manager.events(handle, after):
            data = dict(entry.data)
            await self.send(
                {
                    "type": "event",
                    "event": data.get("type"),
                    "seq": entry.seq,
                    "run_id": handle.run_id,
                    "session_id": handle.session_id,
                    "data": {"seq": entry.seq, **data},
                }
            )
        self.cancel_on_close.discard(handle.run_id)

    def stream(self, handle: RunHandle, after: int = 0) -> None:
        previous = self.streams.pop(handle.run_id, None)
        if previous is not None:
            previous.cancel()
        self.streams[handle.run_id] = asyncio.create_task(self.follow(handle, after))

    async def handle(self, message: dict[str, Any]) -> None:
        kind, ref = message.get("type"), message.get("ref")
        body = {k: v for k, v in message.items() if k not in ("type", "ref")}
        try:
            if kind == "ping":
                await self.send({"type": "pong", "ref": ref})
            elif kind in ("query", "resume"):
                request: PromptRequest
                if kind == "query":
                    request = QueryRequest.model_validate(body)
                    session_id = request.session_id
                else:
                    session_id = str(body.pop("session_id", "") or "")
                    request = PromptRequest.model_validate(body)
                handle = await self.commands.start(request, session_id or None)
                if request.on_disconnect == "cancel":
                    self.cancel_on_close.add(handle.run_id)
                await self.send({"type": "ack", "ref": ref, "session_id": handle.session_id, "run_id": handle.run_id})
                self.stream(handle)
            elif kind == "subscribe":
                handle, after = await self.commands.subscribe(body)
                await self.send({"type": "ack", "ref": ref, "session_id": handle.session_id, "run_id": handle.run_id})
                self.stream(handle, after)
            elif kind in ("interrupt", "permission_response", "answer", "control"):
                result = await self.commands.control(kind, body)
                await self.send({"type": "ack", "ref": ref, **result})
            else:
                await self.send(
                    {
                        "type": "error",
                        "ref": ref,
                        "code": "VALIDATION_ERROR",
                        "message": f"unknown type {kind!r}",
                        "details": {},
                    }
                )
        except SessionNotYours:
            raise
        except ValidationError as exc:
            details = _validation_details(exc)
            first = details["errors"][0] if details["errors"] else {"field": "", "message": "invalid"}
            await self.error(ref, "VALIDATION_ERROR", f"{first['field']}: {first['message']}", details)
        except AppError as exc:
            await self.send(
                {"type": "error", "ref": ref, "code": exc.code, "message": exc.message, "details": exc.details}
            )

    async def close(self) -> None:
        for task in self.streams.values():
            task.cancel()
        await asyncio.gather(*self.streams.values(), return_exceptions=True)
        for run_id in self.cancel_on_close:
            self.state.run_manager.cancel(run_id)


async def _authenticate(websocket: WebSocket, state: AppState) -> Principal | None:
    secret = credential_from_headers(websocket.headers.get("x-api-key"), websocket.headers.get("authorization"))
    if secret is None:
        try:
            first = await asyncio.wait_for(websocket.receive_json(), state.settings.ws_auth_timeout_seconds)
        except TimeoutError:
            await websocket.close(CLOSE_AUTH_TIMEOUT, "authentication timeout")
            return None
        secret = first.get("api_key") if isinstance(first, dict) and first.get("type") == "auth" else None
    principal = None
    if isinstance(secret, str) and secret:
        async with unit_of_work(state.session_factory) as db:
            principal = await ApiKeyService(db).authenticate(secret)
    if principal is None:
        await websocket.close(CLOSE_AUTH, "authentication failed")
    return principal


def _origin_allowed(websocket: WebSocket, state: AppState) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    allowed = state.settings.cors_origins
    return "*" in allowed or origin in allowed


async def _close_when_drained(websocket: WebSocket, state: AppState) -> None:
    """On shutdown, once this instance's runs have ended, tell the client to reconnect elsewhere (1001)."""
    await state.run_manager.drained.wait()
    await asyncio.sleep(0.5)  # the drained runs' last events are on their way
    await websocket.close(1001, "server shutting down: reconnect and subscribe from the last sequence number")


@router.websocket("/query/ws")
async def query_ws(websocket: WebSocket) -> None:
    state: AppState = websocket.app.state.caa
    await websocket.accept()
    if not _origin_allowed(websocket, state):
        await websocket.close(CLOSE_ORIGIN, "origin not allowed")
        return
    peer = websocket.client.host if websocket.client else None
    address = client_address(peer, websocket.headers.get("x-forwarded-for"), state.settings.trusted_proxy_networks)
    try:
        await state.rate_limiter.hit("ip", address, "requests")
    except AppError:
        await websocket.close(4429, "rate limit exceeded")
        return
    principal = await _authenticate(websocket, state)
    if principal is None:
        return
    connection = Connection(websocket, state, principal)
    writer = asyncio.create_task(connection.writer())
    closer = asyncio.create_task(_close_when_drained(websocket, state))
    code, reason = 1000, ""
    try:
        while True:
            message = await websocket.receive_json()
            if not isinstance(message, dict):
                await connection.send(
                    {"type": "error", "code": "VALIDATION_ERROR", "message": "send JSON objects", "details": {}}
                )
                continue
            await connection.handle(message)
    except WebSocketDisconnect:
        pass
    except SessionNotYours:
        code, reason = CLOSE_NOT_FOUND, "session not found"
    except Exception:
        log.exception("websocket.failed")
        code, reason = 1011, "internal error"
    finally:
        await connection.close()
        writer.cancel()
        closer.cancel()
        await asyncio.gather(writer, closer, return_exceptions=True)
        if code != 1000:
            with contextlib.suppress(Exception):
                await websocket.close(code, reason)
