"""SDK lifecycle hooks → the run's webhook relay, and webhook replies → the SDK's hook output.

Each configured webhook becomes a ``HookMatcher`` per event it subscribes to. The callback hands the hook's
input to the agent client's current *relay* (set by the run using the agent), which delivers it and returns the
receiver's reply; this module turns that reply into what the CLI understands:

- ``PreToolUse``: ``{"decision": "allow" | "deny" | "ask", "reason": str?, "updated_input": {...}?}``; a
  delivery that failed (timeout, non-2xx, redirect, unsafe address) or an invalid reply is a **deny** with the
  reason. ``ask`` turns into an approval (the CLI then asks ``can_use_tool``).
- ``UserPromptSubmit``: ``{"decision": "block", "reason": str}`` blocks the prompt;
  ``{"additional_context": str}`` adds context.
- ``PostToolUse``: ``{"additional_context": str}`` adds context.
- Other events are notifications: their replies are ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import HookMatcher

Relay = Callable[[int, str, dict[str, Any]], Awaitable["HookReply"]]


@dataclass(frozen=True)
class HookReply:
    """What a delivery brought back: ``ok`` (2xx), the parsed JSON reply, and why it failed if it did."""

    ok: bool
    reply: dict[str, Any] | None
    error: str | None


def _pre_tool_use(reply: HookReply) -> dict[str, Any]:
    def decide(decision: str, reason: str, updated: dict[str, Any] | None = None) -> dict[str, Any]:
        output: dict[str, Any] = {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
        if updated is not None:
            output["updatedInput"] = updated
        return {"hookSpecificOutput": output}

    if not reply.ok:
        return decide("deny", f"The PreToolUse webhook failed, so the tool is denied: {reply.error}")
    body = reply.reply or {}
    decision = body.get("decision")
    reason = body.get("reason") if isinstance(body.get("reason"), str) else ""
    updated = body.get("updated_input")
    if decision not in ("allow", "deny", "ask") or (updated is not None and not isinstance(updated, dict)):
        return decide("deny", "The PreToolUse webhook gave no valid decision, so the tool is denied.")
    return decide(decision, reason or f"{decision} (webhook)", updated if decision == "allow" else None)


def hook_output(event: str, reply: HookReply) -> dict[str, Any]:
    """The SDK hook output for a webhook's reply to ``event``."""
    if event == "PreToolUse":
        return _pre_tool_use(reply)
    body = reply.reply if reply.ok and reply.reply else {}
    if event == "UserPromptSubmit" and body.get("decision") == "block":
        return {"decision": "block", "reason": str(body.get("reason") or "Blocked by a webhook.")}
    context = body.get("additional_context")
    if event in ("UserPromptSubmit", "PostToolUse") and isinstance(context, str) and context:
        return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": context}}
    return {}


def build_hooks(specs: list[tuple[list[str], str | None, float]], relay: Callable[[], Relay | None]) -> dict[Any, Any]:
    """``HookMatcher``s for webhook specs ``(events, matcher, timeout)``; ``relay()`` gives the current relay."""
    hooks: dict[Any, list[HookMatcher]] = {}
    for index, (events, matcher, timeout) in enumerate(specs):
        for event in events:

            async def callback(
                data: Any, tool_use_id: str | None, context: Any, *, _index: int = index, _event: str = event
            ) -> Any:
                current = relay()
                if current is None:  # no run is attached: fail closed for the decision that matters
                    reply = HookReply(ok=False, reply=None, error="no run is attached to this agent")
                else:
                    reply = await current(_index, _event, dict(data))
                return hook_output(_event, reply)

            # The CLI's own hook timeout is a backstop above the delivery's timeout.
            hooks.setdefault(event, []).append(HookMatcher(matcher=matcher, hooks=[callback], timeout=timeout + 10))
    return hooks
