"""The agent runner: the only package that imports ``claude_agent_sdk``."""
