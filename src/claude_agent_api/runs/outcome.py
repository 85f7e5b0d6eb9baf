"""How a run's result events become its final status, the error a client sees, and its totals."""

from __future__ import annotations

from dataclasses import dataclass

from claude_agent_api.agent.runner import RunOutcome
from claude_agent_api.agent.translate import Event
from claude_agent_api.models import RunStatus

_BY_STOP_REASON = {
    "max_turns_reached": RunStatus.MAX_TURNS,
    "budget_exceeded": RunStatus.BUDGET_EXCEEDED,
    "interrupted": RunStatus.INTERRUPTED,
}


def final_status(outcome: RunOutcome, *, cancelled: bool) -> tuple[RunStatus, Event | None]:
    """The run's status, and an ``error`` event to emit when the last result alone does not say it.

    A result that asked for structured output and has none (marked by the runner) is an error
    (``STRUCTURED_OUTPUT_MISSING``), not a silent null; an error result from the model endpoint becomes
    ``MODEL_API_ERROR``.
    """
    if cancelled:
        return RunStatus.INTERRUPTED, None
    if not outcome.results:
        return RunStatus.FAILED, None if outcome.error else _error("AGENT_ERROR", "The agent ended without a result.")
    last = outcome.results[-1]
    by_reason = _BY_STOP_REASON.get(last.get("stop_reason") or "")
    if by_reason is not None:
        return by_reason, None
    if last.get("stop_reason") == "structured_output_missing":
        return RunStatus.FAILED, _error(
            "STRUCTURED_OUTPUT_MISSING", "The model finished without producing the requested structured output."
        )
    if last.get("is_error"):
        status = last.get("api_error_status")
        if status:
            return RunStatus.FAILED, _error(
                "MODEL_API_ERROR",
                f"The model endpoint answered HTTP {status}: {last.get('result') or 'error'}",
                {"api_error_status": status},
            )
        return RunStatus.FAILED, _error("AGENT_ERROR", "; ".join(last.get("errors") or []) or "The agent failed.")
    return RunStatus.COMPLETED, None


def _error(code: str, message: str, details: dict[str, object] | None = None) -> Event:
    return {"type": "error", "code": code, "message": message, "details": details or {}}


@dataclass(frozen=True)
class Totals:
    num_turns: int = 0
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


def run_totals(outcome: RunOutcome) -> Totals:
    """Totals of a run. Usage and turns are reported per result; the cost of the last result covers the whole
    run (the agent client reports it relative to the start of the run)."""
    if not outcome.results:
        return Totals()
    usages = [r.get("usage") or {} for r in outcome.results]

    def tokens(name: str) -> int:
        return sum(int(u.get(name) or 0) for u in usages)

    return Totals(
        num_turns=sum(int(r.get("num_turns") or 0) for r in outcome.results),
        cost=float(outcome.results[-1].get("total_cost_usd") or 0.0),
        input_tokens=tokens("input_tokens"),
        output_tokens=tokens("output_tokens"),
        cache_read_input_tokens=tokens("cache_read_input_tokens"),
        cache_creation_input_tokens=tokens("cache_creation_input_tokens"),
    )
