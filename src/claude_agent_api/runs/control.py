"""Control messages between instances: whoever holds a run (or a warm agent) acts on it.

An instance that is asked to interrupt a session's run, or to release its warm agent, publishes the request
on the coordination backend's ``control`` channel; every instance listens, and the one that holds the run or
agent acts. In-process coordination makes this a loop-back; Redis makes it cross-instance.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from claude_agent_api.kit.coordination import CoordinationBackend

log = structlog.get_logger("claude_agent_api.control")
CHANNEL = "control"
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class ControlChannel:
    def __init__(self, coordination: CoordinationBackend, handler: Handler) -> None:
        self.coordination = coordination
        self.handler = handler
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="control-listener")
        try:
            await asyncio.wait_for(self._ready.wait(), 5)
        except TimeoutError:
            log.warning("control.not_subscribed_yet")  # it keeps trying in the background

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def publish(self, message: dict[str, Any]) -> None:
        await self.coordination.publish(CHANNEL, message)

    async def request(self, message: dict[str, Any], *, wait: float) -> dict[str, Any] | None:
        """Publish ``message`` and wait for the instance that acts on it to :meth:`reply` (None if none does)."""
        reply_id = str(uuid.uuid4())
        await self.publish({**message, "reply_id": reply_id})
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # a value any instance can set: polled, there is no event to await
            if (raw := await self.coordination.get_value(f"reply:{reply_id}")) is not None:
                answer: dict[str, Any] = json.loads(raw)
                return answer
            await asyncio.sleep(0.02)
        return None

    async def reply(self, message: dict[str, Any], answer: dict[str, Any]) -> None:
        """Answer a :meth:`request` (from the instance that acted on it)."""
        if isinstance(reply_id := message.get("reply_id"), str):
            await self.coordination.set_value(f"reply:{reply_id}", json.dumps(answer), ttl=60)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self.coordination.subscribe(CHANNEL) as subscription:
                    self._ready.set()
                    backoff = 0.5
                    async for _, message in subscription:
                        try:
                            await self.handler(message)
                        except Exception:
                            log.exception("control.handler_failed", action=message.get("action"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("control.subscription_lost", error=type(exc).__name__, retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)
