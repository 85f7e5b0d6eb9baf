"""All ORM models, in one package, so Alembic and the repositories see one metadata."""

from claude_agent_api.models.api_key import ApiKey, KeyScope
from claude_agent_api.models.base import Base
from claude_agent_api.models.checkpoint import Checkpoint, SessionCut, SessionFile
from claude_agent_api.models.hook import HookDelivery
from claude_agent_api.models.session import AgentSession, Run, RunEvent, RunStatus, SessionStatus
from claude_agent_api.models.transcript import SessionTag, TranscriptEntry

__all__ = [
    "AgentSession",
    "ApiKey",
    "Base",
    "Checkpoint",
    "HookDelivery",
    "KeyScope",
    "Run",
    "RunEvent",
    "RunStatus",
    "SessionCut",
    "SessionFile",
    "SessionStatus",
    "SessionTag",
    "TranscriptEntry",
]
