"""Claude Agent API: a multi-tenant HTTP service that runs Claude Agent SDK agents."""

__version__ = "0.1.0"
