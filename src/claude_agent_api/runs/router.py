"""``POST /api/v1/query`` (Server-Sent Events) and ``POST /api/v1/query/single`` (one JSON document).

Everything is checked before the first byte: authentication, the run budget, validation, session ownership
and lock, capacity. After that, failures arrive as an ``error`` event followed by ``done``. Every SSE frame has
``id:`` (the event's sequence number in its run) and ``event:`` (its type, see :mod:`.events`); comment
heartbeats keep proxies from closing a quiet stream. The session and run ids are also in the response headers
``X-Session-ID`` and ``X-Run-ID``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from claude_agent_api.auth.dependencies import CurrentKey, RunKey
from claude_agent_api.dependencies import DbSession, State
from claude_agent_api.errors import RequestValidationFailed, error_response
from claude_agent_api.kit.coordination import LogEntry
from claude_agent_api.kit.http import API_PREFIX
from claude_agent_api.runs.errors import RunNotFound
from claude_agent_api.runs.events import EVENT_NAMES
from claude_agent_api.runs.manager import RunHandle, RunManager
from claude_agent_api.runs.repository import RunRepository
from claude_agent_api.runs.schemas import ForkRequest, PromptRequest, QueryRequest
from claude_agent_api.runs.single import QueryResult, collect
from claude_agent_api.sessions.forks import fork_session
from claude_agent_api.sessions.repository import SessionRepository
from claude_agent_api.sessions.schemas import SessionRead
from claude_agent_api.sessions.service import SessionService

router = APIRouter(prefix=API_PREFIX, tags=["runs"])

# Failures that are the upstream's, not the caller's: query/single answers them with 502.
_UPSTREAM_FAILURES = {"AGENT_START_FAILED", "AGENT_PROCESS_FAILED", "MODEL_API_ERROR"}


def _headers(handle: RunHandle) -> dict[str, str]:
    return {"X-Session-ID": handle.session_id, "X-Run-ID": handle.run_id}


async def _until(source: AsyncGenerator[LogEntry], stop: asyncio.Future[None]) -> AsyncIterator[LogEntry]:
    """The items of ``source`` until ``stop`` completes (an item already there is still delivered)."""
    item: asyncio.Future[LogEntry] | None = None
    try:
        while True:
            item = asyncio.ensure_future(anext(source))
            waiting: list[asyncio.Future[Any]] = [item, stop]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not item.done():
                return
            try:
                entry = item.result()
            except StopAsyncIteration:
                return
            item = None
            yield entry
    finally:
        # A pending read must end before the source can be closed (the client left, or the stream stopped).
        if item is not None and not item.done():
            item.cancel()
            await asyncio.gather(item, return_exceptions=True)
        await source.aclose()


async def _stop_when_drained(manager: RunManager, shutdown: anyio.Event) -> None:
    """Completes once the server is shutting down and this instance's runs have been drained."""
    await shutdown.wait()
    await manager.drained.wait()
    await asyncio.sleep(0.5)  # the drained runs' last events are on their way


def _frame(seq: int | None, data: dict[str, Any]) -> ServerSentEvent:
    kind = str(data.get("type", "message"))
    payload = json.dumps({"seq": seq, **data} if seq is not None else data, default=str)
    return ServerSentEvent(data=payload, event=kind, id=str(seq) if seq is not None else None)


async def _frames(
    manager: RunManager,
    handle: RunHandle,
    shutdown: anyio.Event,
    *,
    after: int = 0,
    cancel_on_disconnect: bool = False,
) -> AsyncIterator[ServerSentEvent]:
    finished = False
    stop = asyncio.ensure_future(_stop_when_drained(manager, shutdown))
    try:
        async for entry in _until(manager.events(handle, after), stop):
            finished = entry.data.get("type") == "done"
            yield _frame(entry.seq, entry.data)
        if not finished:
            # The server is going away before this run ended here: tell the client to rejoin elsewhere.
            ids = {"run_id": handle.run_id, "session_id": handle.session_id}
            message = "This instance is shutting down; reconnect with Last-Event-ID to continue the stream."
            yield _frame(None, {"type": "error", "code": "SERVER_SHUTTING_DOWN", "message": message, **ids})
            yield _frame(None, {"type": "done", "status": "running", "reconnect": True, **ids})
            finished = True
    finally:
        stop.cancel()
        if not finished and cancel_on_disconnect:
            manager.cancel(handle.run_id)  # the client went away and asked for its run to end with it


def _stream(
    state: State, handle: RunHandle, *, after: int = 0, cancel_on_disconnect: bool = False
) -> EventSourceResponse:
    shutdown = anyio.Event()
    return EventSourceResponse(
        _frames(state.run_manager, handle, shutdown, after=after, cancel_on_disconnect=cancel_on_disconnect),
        ping=state.settings.sse_heartbeat_seconds,
        headers={**_headers(handle), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        shutdown_event=shutdown,
        shutdown_grace_period=state.settings.drain_seconds + 15,
    )


async def _cancel_on_disconnect(request: Request, manager: RunManager, handle: RunHandle) -> None:
    # The body has been read, so the next ASGI message is the client's disconnect (if it comes).
    while (await request.receive())["type"] != "http.disconnect":
        pass
    manager.cancel(handle.run_id)


async def _wait(state: State, db: DbSession, request: Request, handle: RunHandle, body: PromptRequest) -> Any:
    """Wait for the run to end and answer with one JSON document (502 for the upstream's failures)."""
    await db.commit()  # the run starts once its rows are committed; this route waits for it to end
    watcher = None
    if body.on_disconnect == "cancel":
        watcher = asyncio.create_task(_cancel_on_disconnect(request, state.run_manager, handle))
    try:
        result = await collect(state.run_manager.events(handle), handle)
    finally:
        if watcher is not None:
            watcher.cancel()
    if result.error is not None and result.error.code in _UPSTREAM_FAILURES:
        return error_response(
            502,
            result.error.code,
            result.error.message,
            {"session_id": handle.session_id, "run_id": handle.run_id, **result.error.details},
            _headers(handle),
        )
    return JSONResponse(result.model_dump(mode="json"), headers=_headers(handle))


_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": f"Events: {', '.join(EVENT_NAMES)}."}
}
_JSON: dict[int | str, dict[str, Any]] = {
    200: {"model": QueryResult},
    502: {"description": "The agent CLI failed to start or the model endpoint failed."},
}


@router.post(
    "/query", summary="Start a run and stream its events (SSE)", response_class=EventSourceResponse, responses=_SSE
)
async def query(body: QueryRequest, principal: RunKey, state: State, db: DbSession) -> EventSourceResponse:
    handle = await state.run_manager.start(principal, body, db, session_id=body.session_id)
    return _stream(state, handle, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/query/single", summary="Run a prompt and return the whole outcome as one JSON document", responses=_JSON)
async def query_single(body: QueryRequest, principal: RunKey, state: State, db: DbSession, request: Request) -> Any:
    handle = await state.run_manager.start(principal, body, db, session_id=body.session_id)
    return await _wait(state, db, request, handle, body)


@router.post(
    "/sessions/{session_id}/resume",
    summary="Continue a session with a new prompt (SSE, or one JSON document with ?stream=false)",
    responses={**_SSE, 502: _JSON[502]},
)
async def resume(
    session_id: str,
    body: PromptRequest,
    principal: RunKey,
    state: State,
    db: DbSession,
    request: Request,
    stream: bool = Query(default=True, description="false: wait and return one JSON document."),
) -> Any:
    handle = await state.run_manager.start(principal, body, db, session_id=session_id)
    if stream:
        return _stream(state, handle, cancel_on_disconnect=body.on_disconnect == "cancel")
    return await _wait(state, db, request, handle, body)


@router.get(
    "/sessions/{session_id}/stream",
    summary="Rejoin the current or last run's events (after Last-Event-ID or ?after=), from any instance",
    response_class=EventSourceResponse,
    responses=_SSE,
)
async def rejoin(
    session_id: str,
    principal: CurrentKey,
    state: State,
    db: DbSession,
    after: int | None = Query(default=None, ge=0, description="Replay the events after this sequence number."),
    run_id: str | None = Query(default=None, description="A specific run of the session (default: the latest)."),
    last_event_id: str | None = Header(default=None, description="Standard SSE reconnection header; wins over ?after."),
) -> EventSourceResponse:
    await SessionRepository(db).require_owned(session_id, principal.key_id)
    run = await RunRepository(db).get(run_id) if run_id else await RunRepository(db).latest_for_session(session_id)
    if run is None or run.session_id != session_id:
        raise RunNotFound(details={"session_id": session_id})
    position = after or 0
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise RequestValidationFailed.for_field(["header", "Last-Event-ID"], "must be an event sequence number")
        position = int(last_event_id)
    handle = RunHandle(run_id=run.id, session_id=session_id)
    return _stream(state, handle, after=position)


@router.post(
    "/sessions/{session_id}/fork",
    status_code=201,
    summary="Branch a session (optionally at a message) into a new one; with a prompt, also run it",
    responses={201: {"model": SessionRead}, 409: {"description": "NOTHING_TO_FORK"}, **_SSE},
)
async def fork(
    session_id: str,
    body: ForkRequest,
    principal: RunKey,
    state: State,
    db: DbSession,
    request: Request,
    stream: bool = Query(default=True, description="With a prompt: false waits and returns one JSON document."),
) -> Any:
    row = await fork_session(
        db,
        state.settings,
        state.run_manager.store,
        principal.key_id,
        session_id,
        message_id=body.message_id,
        title=body.title,
    )
    if body.prompt is None:
        read = SessionService(db, state.settings).to_read(row)
        return JSONResponse(read.model_dump(mode="json"), status_code=201, headers={"X-Session-ID": row.id})
    prompt = PromptRequest.model_validate(body.model_dump(exclude={"message_id", "title"}, exclude_unset=True))
    handle = await state.run_manager.start(principal, prompt, db, session_id=row.id)
    if stream:
        return _stream(state, handle, cancel_on_disconnect=prompt.on_disconnect == "cancel")
    return await _wait(state, db, request, handle, prompt)
