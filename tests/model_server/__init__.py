"""A scripted, Anthropic-compatible model server for tests (the only "model" on an offline machine).

- :mod:`.script` documents the script format (steps, lanes for subagents, the ``[[script:...]]`` marker);
- :mod:`.app` the endpoints and how a request finds its script;
- :mod:`.server` runs it (``ModelServer``), :mod:`.fixture` is the pytest plugin (``model_server``);
- ``python -m tests.model_server --port 8788`` runs it in the foreground.
"""

from .script import Script, Step, parse_step, script_marker
from .server import ModelServer, cli_env

__all__ = ["ModelServer", "Script", "Step", "cli_env", "parse_step", "script_marker"]
