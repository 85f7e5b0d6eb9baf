"""Run the scripted model server with uvicorn in a background thread (or in the foreground).

``ModelServer`` binds 127.0.0.1 on a free port before starting, so ``base_url`` is known at once, and
stops uvicorn cleanly (the listening socket is closed by uvicorn's shutdown).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .script import script_marker
from .state import ModelState

DUMMY_API_KEY = "test-key"


def cli_env(base_url: str) -> dict[str, str]:
    """The environment the Claude Code CLI needs to talk to ``base_url`` offline."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": DUMMY_API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "IS_SANDBOX": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
    }


class ModelServer:
    """A scripted Anthropic-compatible server on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log_level: str = "warning") -> None:
        self.state = ModelState()
        # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (else ~40 ms per reply)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(2048)  # connections made before uvicorn runs wait in the backlog
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            create_app(self.state),
            log_level=log_level,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        """CLI environment for this server (see :func:`cli_env`), plus ``extra``."""
        return {**cli_env(self.base_url), **extra}

    def isolated_env(self, root: Path, **extra: str) -> dict[str, str]:
        """:meth:`env` plus a private HOME, CLAUDE_CONFIG_DIR and CLAUDE_CODE_TMPDIR (0700) under ``root``.

        Keep ``root`` short (e.g. ``tempfile.mkdtemp()``): the CLI puts unix sockets under its tmp dir."""
        home, tmp = root / "home", root / "tmp"
        (home / ".claude").mkdir(parents=True, exist_ok=True)
        tmp.mkdir(mode=0o700, exist_ok=True)
        tmp.chmod(0o700)
        dirs = {"HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"), "CLAUDE_CODE_TMPDIR": str(tmp)}
        return self.env(**dirs, **extra)

    def add_script(self, steps: list[Any], token: str | None = None, session_id: str | None = None) -> str:
        """Register a script; put the returned token in the prompt (or pass ``session_id``)."""
        return self.state.add_script(steps, token=token, session_id=session_id)

    @staticmethod
    def marker(steps: list[Any]) -> str:
        """The ``[[script:...]]`` prompt marker for ``steps``."""
        return script_marker(steps)

    def requests(
        self, session_id: str | None = None, token: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        return self.state.requests(session_id=session_id, token=token, kind=kind)

    def reset(self) -> None:
        self.state.reset()

    def start(self, timeout: float = 10.0) -> ModelServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="model-server", daemon=True
        )
        self._thread.start()
        for _ in range(int(timeout / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError("scripted model server did not start")
        return self

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (Ctrl-C or SIGTERM), then return."""
        try:
            self._server.run(sockets=[self._sock])
        except KeyboardInterrupt:  # uvicorn re-raises the signal after its graceful shutdown
            pass
        finally:
            self._sock.close()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
