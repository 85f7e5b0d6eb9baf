"""Collect a run's events into the one JSON document ``POST /query/single`` returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from claude_agent_api.kit.coordination import LogEntry
from claude_agent_api.runs.events import ErrorEvent, InitEvent, MessageEvent, ResultEvent, RunEvent, TodoEvent


class QueryResult(BaseModel):
    session_id: str
    run_id: str
    status: str = Field(description="The run's final status (completed, failed, max_turns, …).")
    result: ResultEvent | None = Field(description="The last result (a run can have several).")
    results: list[ResultEvent]
    text: str | None = Field(description="The final result text.")
    structured_output: Any = None
    total_cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    init: InitEvent | None = None
    messages: list[MessageEvent] = Field(description="Every message of the run, in order.")
    todos: TodoEvent | None = Field(default=None, description="The last state of the agent's task list.")
    error: ErrorEvent | None = None


_EVENT = TypeAdapter[Any](RunEvent)


async def collect(entries: AsyncIterator[LogEntry], handle: Any) -> QueryResult:
    results: list[ResultEvent] = []
    messages: list[MessageEvent] = []
    init: InitEvent | None = None
    todos: TodoEvent | None = None
    error: ErrorEvent | None = None
    status = "failed"
    async for entry in entries:
        if entry.data.get("type") == "partial":
            continue
        event = _EVENT.validate_python({"seq": entry.seq, **entry.data})
        if isinstance(event, ResultEvent):
            results.append(event)
        elif isinstance(event, MessageEvent):
            messages.append(event)
        elif isinstance(event, InitEvent):
            init = event
        elif isinstance(event, TodoEvent):
            todos = event
        elif isinstance(event, ErrorEvent):
            error = event
        else:
            status = event.status
    last = results[-1] if results else None
    return QueryResult(
        session_id=handle.session_id,
        run_id=handle.run_id,
        status=status,
        result=last,
        results=results,
        text=last.result if last else None,
        structured_output=last.structured_output if last else None,
        total_cost_usd=last.total_cost_usd if last else None,
        usage=last.usage if last else None,
        init=init,
        messages=messages,
        todos=todos,
        error=error,
    )
