"""Read an SSE stream in the background and wait for particular events while the run goes on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx


class StreamWatcher:
    def __init__(self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> None:
        self.frames: list[dict[str, Any]] = []
        self.headers: httpx.Headers | None = None
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._read(client, method, url, kwargs))

    async def _read(self, client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]) -> None:
        async with client.stream(method, url, **kwargs) as response:
            self.headers = response.headers
            frame: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    continue
                if not line:
                    if "data" in frame:
                        frame["data"] = json.loads(frame["data"])
                        async with self._new:
                            self.frames.append(frame)
                            self._new.notify_all()
                    frame = {}
                    continue
                name, _, value = line.partition(":")
                frame[name] = value[1:] if value.startswith(" ") else value
        async with self._new:
            self._new.notify_all()

    async def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """The data of the first frame named ``event`` (waiting for it to arrive)."""

        def found() -> dict[str, Any] | None:
            return next((f["data"] for f in self.frames if f["event"] == event), None)

        async def wait() -> dict[str, Any]:
            async with self._new:
                while (data := found()) is None:
                    if self._task.done():
                        raise AssertionError(f"the stream ended without a {event!r} event: {self.events()}")
                    await self._new.wait()
                return data

        return await asyncio.wait_for(wait(), timeout)

    def events(self) -> list[str]:
        return [f["event"] for f in self.frames]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [f["data"] for f in self.frames if f["event"] == event]

    async def finish(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        await asyncio.wait_for(self._task, timeout)
        return self.frames

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
