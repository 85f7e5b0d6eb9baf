"""File checkpoints of sessions with ``enable_file_checkpointing``: list them, rewind files (and optionally the
conversation) to one of them. The CLI-facing half lives in :mod:`claude_agent_api.agent.checkpoints`."""
