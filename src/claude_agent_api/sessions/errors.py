"""Session errors (see :mod:`claude_agent_api.errors` for the hierarchy)."""

from __future__ import annotations

from claude_agent_api.errors import Conflict, NotFound


class SessionNotFound(NotFound):
    """Also the answer for another key's session: existence never leaks."""

    code = "SESSION_NOT_FOUND"
    default_message = "Session not found."


class SessionLocked(Conflict):
    code = "SESSION_LOCKED"
    default_message = "The session is running another prompt."
