"""Skills, slash commands and subagents the agent would see for a cwd: ``GET /skills``, ``/commands``, ``/agents``.

``discovery`` reads the files (pure filesystem logic, no HTTP), ``schemas`` holds the response models, ``router``
turns a key and a ``cwd`` into the directories to read.
"""
