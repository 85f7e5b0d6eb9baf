"""Run errors (see :mod:`claude_agent_api.errors` for the hierarchy)."""

from __future__ import annotations

from claude_agent_api.errors import AppError, Conflict, NotFound, RateLimitExceeded, ServiceUnavailable


class CapacityExceeded(ServiceUnavailable):
    code = "CAPACITY_EXCEEDED"
    default_message = "This instance is running as many agents as it may; retry shortly."


class KeyConcurrencyExceeded(RateLimitExceeded):
    code = "CONCURRENCY_LIMIT_EXCEEDED"
    default_message = "This API key is running as many agents at once as it may."


class AgentFailed(AppError):
    """The agent could not do its work (the CLI did not start, or the model endpoint failed)."""

    status = 502
    code = "AGENT_ERROR"
    default_message = "The agent failed."


class NoActiveRun(Conflict):
    code = "NO_ACTIVE_RUN"
    default_message = "Nothing is running in this session."


class RunNotFound(NotFound):
    code = "RUN_NOT_FOUND"
    default_message = "The session has no such run."


class ShuttingDown(ServiceUnavailable):
    code = "SHUTTING_DOWN"
    default_message = "This instance is shutting down; retry (another instance will take the run)."


class NoLiveAgent(Conflict):
    code = "NO_LIVE_AGENT"
    default_message = "No running or warm agent holds this session; its MCP status is known only while one does."
