"""Abuse limits with the ``limits`` library: per API key and per client address, two budgets each.

``requests`` covers every authenticated call, ``runs`` covers calls that start an agent run (a CLI process).
Storage follows the coordination backend: in-process memory, or Redis so N instances share one budget.
Exceeding a limit raises 429 ``RATE_LIMIT_EXCEEDED`` with ``Retry-After`` and the ``RateLimit-*`` headers; the
same headers are added to successful responses. If the limit storage is unreachable the request is let through
(logged): a dead Redis must not take the API down with it; readiness reports it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from claude_agent_api.config import Settings
from claude_agent_api.errors import RateLimitExceeded

Budget = Literal["requests", "runs"]
log = structlog.get_logger("claude_agent_api.ratelimit")


@dataclass(frozen=True, slots=True)
class LimitState:
    limit: int
    remaining: int
    reset_after: int
    window: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_after),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self._storage: Storage
        if settings.redis_url:
            uri = "async+" + settings.redis_url
            self._storage = RedisStorage(
                uri, implementation="redispy", key_prefix=f"{settings.namespace}:limits", socket_timeout=2
            )
        else:
            self._storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._limits: dict[tuple[str, Budget], list[RateLimitItem]] = {
            ("key", "requests"): parse_many(settings.rate_limit_key_requests),
            ("key", "runs"): parse_many(settings.rate_limit_key_runs),
            ("ip", "requests"): parse_many(settings.rate_limit_ip_requests),
            ("ip", "runs"): parse_many(settings.rate_limit_ip_runs),
        }

    async def hit(self, scope: Literal["key", "ip"], identity: str, budget: Budget) -> LimitState | None:
        """Count one request; raise :class:`RateLimitExceeded` when over; return the tightest state."""
        if not self.enabled:
            return None
        tightest: LimitState | None = None
        for item in self._limits[(scope, budget)]:
            try:
                allowed = await self._strategy.hit(item, scope, budget, identity)
                stats = await self._strategy.get_window_stats(item, scope, budget, identity)
            except Exception as exc:
                log.warning("ratelimit.storage_unavailable", error=type(exc).__name__)
                return None
            reset_after = max(1, math.ceil(stats.reset_time - time.time()))
            state = LimitState(
                limit=item.amount,
                remaining=stats.remaining,
                reset_after=reset_after,
                window=item.get_expiry(),
            )
            if not allowed:
                raise RateLimitExceeded(
                    f"Rate limit exceeded for this {'API key' if scope == 'key' else 'client address'}: "
                    f"{item.amount} {budget} per {item.get_expiry()} s.",
                    details={"scope": scope, "budget": budget, "retry_after": reset_after},
                    headers={"Retry-After": str(reset_after), **state.headers()},
                )
            if tightest is None or state.remaining < tightest.remaining:
                tightest = state
        return tightest

    async def reset(self) -> None:
        await self._storage.reset()

    async def close(self) -> None:
        if isinstance(self._storage, RedisStorage):
            await self._storage.bridge.storage.aclose()  # type: ignore[attr-defined]
