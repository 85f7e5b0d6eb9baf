"""Session errors (see :mod:`claude_agent_api.errors` for the base hierarchy)::

NotFound [404]  └── SessionNotFound [404 SESSION_NOT_FOUND]
Conflict [409]  └── SessionLocked [409 SESSION_LOCKED]
AppError        └── SessionExpired [410 SESSION_EXPIRED]
"""

from __future__ import annotations

from claude_agent_api.errors import AppError, Conflict, NotFound


class SessionNotFound(NotFound):
    """Also the answer for another key's session: existence never leaks."""

    code = "SESSION_NOT_FOUND"
    default_message = "Session not found."


class SessionLocked(Conflict):
    code = "SESSION_LOCKED"
    default_message = "The session is running another prompt."


class SessionExpired(AppError):
    """The session was idle longer than ``session_idle_expiry_seconds``: its data is gone, its id answers 410."""

    status = 410
    code = "SESSION_EXPIRED"
    default_message = "The session has expired."
