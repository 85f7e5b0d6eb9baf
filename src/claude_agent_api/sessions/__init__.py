"""Sessions: one conversation with the agent, owned by one API key."""
