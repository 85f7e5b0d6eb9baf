"""Run the scripted model server in the foreground: ``python -m tests.model_server --port 8788``.

Prints the environment a Claude Code CLI (or the service) needs to use it. Without a script in the
prompt every reply is a friendly default text; put ``[[script:[...]]]`` in a prompt to script replies.
"""

from __future__ import annotations

import argparse
import shlex

from .server import ModelServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.model_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    server = ModelServer(port=args.port, host=args.host, log_level=args.log_level)
    print(f"Scripted model server on {server.base_url}. Environment for the CLI:")
    for key, value in server.env().items():
        print(f"export {key}={shlex.quote(value)}")
    example = server.marker([{"tool_use": {"name": "Bash", "input": {"command": "echo hi"}}}, "It said hi."])
    print(f"Example prompt: run it {example}")
    print(f"Recorded requests: {server.base_url}/_requests   (Ctrl-C to stop)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
