"""A real uvicorn server in a background thread: real HTTP, real streaming, real disconnects.

The app runs on its own event loop in that thread; tests talk to it over 127.0.0.1 with httpx and read its
database through an engine of their own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx
import uvicorn

from claude_agent_api.app import create_app
from claude_agent_api.config import Settings
from claude_agent_api.kit.database import create_engine, create_session_factory
from claude_agent_api.state import AppState

T = TypeVar("T")


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_config=None,
            lifespan="on",
            proxy_headers=False,
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.base_url = ""

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's own event loop (to reach its state, e.g. its coordination backend)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    @property
    def state(self) -> AppState:
        state = self.app.state.caa
        assert isinstance(state, AppState)
        return state

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[Any]:
        """A database session of the test's own (not the server's)."""
        engine = create_engine(self.settings.effective_database_url, pool_size=1)
        try:
            async with create_session_factory(engine)() as session:
                yield session
        finally:
            await engine.dispose()

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"X-API-Key": key} if key else {}
        kwargs.setdefault("timeout", 60)
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, **kwargs)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def parse_sse(text: str) -> list[dict[str, Any]]:
    """SSE frames → ``[{"id", "event", "data"}]`` (comments and pings dropped)."""
    import json

    frames = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        frame: dict[str, Any] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            frame[name] = value[1:] if value.startswith(" ") else value
        if "data" in frame:
            frame["data"] = json.loads(frame["data"])
            frames.append(frame)
    return frames
