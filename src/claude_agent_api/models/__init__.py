"""All ORM models, in one package, so Alembic and the repositories see one metadata."""

from claude_agent_api.models.api_key import ApiKey, KeyScope
from claude_agent_api.models.base import Base

__all__ = ["ApiKey", "Base", "KeyScope"]
