"""Deliver a run's hook events to the client's webhooks, log each delivery, and stream it as a ``hook`` event.

The payload is the hook's input as the CLI gives it, with the run and session ids, minus server paths
(``transcript_path``, ``cwd``). PreToolUse is delivered once (a failure denies the tool, see
:mod:`claude_agent_api.agent.hooks`); other events are best effort, retried ``webhook_retries`` times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import structlog

from claude_agent_api.agent.runner import HookReply, Relay
from claude_agent_api.agent.translate import Event
from claude_agent_api.config import Settings
from claude_agent_api.kit.database import SessionFactory, unit_of_work
from claude_agent_api.models import HookDelivery
from claude_agent_api.webhooks.delivery import WebhookClient, deliver
from claude_agent_api.webhooks.schemas import WebhookSpec

log = structlog.get_logger("claude_agent_api.hooks")
_SERVER_PATHS = {"transcript_path", "cwd", "agent_transcript_path"}


class HookRelay:
    def __init__(self, settings: Settings, session_factory: SessionFactory) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.client = WebhookClient(allow=settings.webhook_allow_private)

    def relay(
        self,
        *,
        run_id: str,
        session_id: str,
        specs: list[WebhookSpec],
        secret: str,
        emit: Callable[[Event], Awaitable[None]],
        stream_events: bool,
    ) -> Relay:
        async def send(index: int, event: str, data: dict[str, Any]) -> HookReply:
            spec = specs[index]
            payload = {k: v for k, v in data.items() if k not in _SERVER_PATHS}
            payload.update(session_id=session_id, run_id=run_id, event=event)
            retries = 0 if event == "PreToolUse" else self.settings.webhook_retries
            result = await deliver(
                self.client, spec.url, secret, event, payload, timeout=spec.timeout_seconds, retries=retries
            )
            decision = None
            if event == "PreToolUse":
                reply = result.reply or {}
                decision = str(reply.get("decision")) if result.ok and reply.get("decision") else "deny"
            record = {
                "event": event,
                "tool_name": data.get("tool_name"),
                "url_host": urlsplit(spec.url).hostname or "",
                "webhook_id": result.webhook_id,
                "ok": result.ok,
                "status": result.status,
                "attempts": result.attempts,
                "duration_ms": round(result.duration_ms, 2),
                "decision": decision,
                "error": result.error,
            }
            try:
                async with unit_of_work(self.session_factory) as db:
                    db.add(HookDelivery(session_id=session_id, run_id=run_id, **record))
            except Exception:
                log.exception("hooks.log_failed", run_id=run_id)
            if stream_events:
                await emit({"type": "hook", **record})
            return HookReply(ok=result.ok, reply=result.reply, error=result.error)

        return send

    async def aclose(self) -> None:
        await self.client.aclose()
