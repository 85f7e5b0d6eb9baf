"""In-process coordination backend: the embedded default for a single instance.

Everything lives in dictionaries owned by one :class:`MemoryCoordination`, used from one event loop.
No method awaits between reading and writing its state, so each one is atomic with respect to other
tasks — the same guarantee Redis gives with single commands and Lua scripts.

Expiry follows Redis: deadlines are ``time.monotonic()`` instants, an expired lock, value, counter or
log is treated as absent from the moment its deadline passes (checked on access), and writes sweep out
everything expired at most once per second so abandoned keys do not accumulate.

Events and messages are stored as JSON text and decoded on every read, so callers get fresh dicts and
non-JSON data fails here exactly as it would on Redis. ``tail`` parks a future per waiting reader that
``append`` resolves; pub/sub hands each subscription its own unbounded queue.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .base import CoordinationBackend, LogEntry, Message, Subscription, check_limit, check_ttl

__all__ = ["MemoryCoordination"]

_SWEEP_INTERVAL = 1.0
_T = TypeVar("_T")


@dataclass(slots=True)
class _Expiring:
    expires_at: float | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(slots=True)
class _Item(_Expiring, Generic[_T]):
    value: _T


@dataclass(slots=True)
class _Log(_Expiring):
    seq: int = 0
    entries: list[tuple[int, str]] = field(default_factory=list)  # (seq, event as JSON)


_E = TypeVar("_E", bound=_Expiring)


def _deadline(ttl: float | None) -> float | None:
    return None if ttl is None else time.monotonic() + ttl


def _live(store: dict[str, _E], key: str) -> _E | None:
    item = store.get(key)
    if item is not None and item.expired(time.monotonic()):
        del store[key]
        return None
    return item


class _MemorySubscription(Subscription):
    def __init__(self, channels: frozenset[str]) -> None:
        self._channels = channels
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._closed = False

    @property
    def channels(self) -> frozenset[str]:
        return self._channels

    def deliver(self, message: Message) -> None:
        self._queue.put_nowait(message)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)  # wakes a reader blocked in get()

    async def get(self, timeout: float | None = None) -> Message | None:  # noqa: ASYNC109
        if self._closed:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None


class MemoryCoordination(CoordinationBackend):
    """Coordination for one process; see the module docstring."""

    def __init__(self) -> None:
        self._locks: dict[str, _Item[str]] = {}
        self._values: dict[str, _Item[str]] = {}
        self._counters: dict[str, _Item[int]] = {}
        self._logs: dict[str, _Log] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subscribers: dict[str, set[_MemorySubscription]] = {}
        self._last_sweep = time.monotonic()

    @property
    def name(self) -> Literal["memory"]:
        return "memory"

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < _SWEEP_INTERVAL:
            return
        self._last_sweep = now
        stores: tuple[dict[str, Any], ...] = (self._locks, self._values, self._counters, self._logs)
        for store in stores:
            for key in [key for key, item in store.items() if item.expired(now)]:
                del store[key]

    # -- locks -------------------------------------------------------------------------------------

    async def acquire_lock(self, name: str, ttl: float, token: str | None = None) -> str | None:
        check_ttl(ttl)
        self._sweep()
        token = token or secrets.token_hex(16)
        lock = _live(self._locks, name)
        if lock is not None and lock.value != token:
            return None
        self._locks[name] = _Item(_deadline(ttl), token)
        return token

    async def refresh_lock(self, name: str, token: str, ttl: float) -> bool:
        check_ttl(ttl)
        lock = _live(self._locks, name)
        if lock is None or lock.value != token:
            return False
        lock.expires_at = _deadline(ttl)
        return True

    async def release_lock(self, name: str, token: str) -> bool:
        lock = _live(self._locks, name)
        if lock is None or lock.value != token:
            return False
        del self._locks[name]
        return True

    async def lock_owner(self, name: str) -> str | None:
        lock = _live(self._locks, name)
        return None if lock is None else lock.value

    async def lock_ttl(self, name: str) -> float | None:
        lock = _live(self._locks, name)
        if lock is None or lock.expires_at is None:
            return None
        return max(0.0, lock.expires_at - time.monotonic())

    # -- event logs --------------------------------------------------------------------------------

    async def append(self, log: str, event: dict[str, Any], *, ttl: float | None = None) -> int:
        check_ttl(ttl)
        payload = json.dumps(event)
        self._sweep()
        entries = _live(self._logs, log)
        if entries is None:
            entries = self._logs[log] = _Log(None)
        entries.seq += 1
        entries.entries.append((entries.seq, payload))
        if ttl is not None:
            entries.expires_at = _deadline(ttl)
        for waiter in self._waiters.pop(log, ()):
            if not waiter.done():
                waiter.set_result(None)
        return entries.seq

    async def read_after(self, log: str, after: int, limit: int | None = None) -> list[LogEntry]:
        check_limit(limit)
        entries = _live(self._logs, log)
        if entries is None:
            return []
        start = bisect.bisect_right(entries.entries, after, key=lambda entry: entry[0])
        stop = None if limit is None else start + limit
        return [LogEntry(seq, json.loads(data)) for seq, data in entries.entries[start:stop]]

    async def tail(
        self,
        log: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 - part of the contract, mirrors XREAD BLOCK
        *,
        limit: int | None = None,
    ) -> list[LogEntry]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await self.read_after(log, after, limit)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            waiter: asyncio.Future[None] = loop.create_future()
            waiters = self._waiters.setdefault(log, set())
            waiters.add(waiter)
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                waiter.cancel()
                waiters.discard(waiter)
                if not waiters and self._waiters.get(log) is waiters:
                    del self._waiters[log]

    async def last_seq(self, log: str) -> int:
        entries = _live(self._logs, log)
        return 0 if entries is None else entries.seq

    async def expire_log(self, log: str, ttl: float) -> None:
        check_ttl(ttl)
        entries = _live(self._logs, log)
        if entries is not None:
            entries.expires_at = _deadline(ttl)

    async def delete_log(self, log: str) -> None:
        self._logs.pop(log, None)

    # -- publish/subscribe -------------------------------------------------------------------------

    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        payload = json.dumps(message)
        receivers = self._subscribers.get(channel, set())
        for subscription in receivers:
            subscription.deliver((channel, json.loads(payload)))
        return len(receivers)

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        return self._subscription(frozenset(channels))

    @asynccontextmanager
    async def _subscription(self, channels: frozenset[str]) -> AsyncIterator[Subscription]:
        subscription = _MemorySubscription(channels)
        for channel in channels:
            self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            self._unsubscribe(subscription)

    def _unsubscribe(self, subscription: _MemorySubscription) -> None:
        subscription.close()
        for channel in subscription.channels:
            receivers = self._subscribers.get(channel)
            if receivers is not None:
                receivers.discard(subscription)
                if not receivers:
                    del self._subscribers[channel]

    # -- counters ----------------------------------------------------------------------------------

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        check_ttl(ttl)
        self._sweep()
        counter = _live(self._counters, key)
        if counter is None:
            counter = self._counters[key] = _Item(_deadline(ttl), 0)
        counter.value += amount
        return counter.value

    async def get_counter(self, key: str) -> int:
        counter = _live(self._counters, key)
        return 0 if counter is None else counter.value

    async def delete(self, key: str) -> bool:
        return _live(self._counters, key) is not None and self._counters.pop(key, None) is not None

    # -- values ------------------------------------------------------------------------------------

    async def set_value(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        check_ttl(ttl)
        self._sweep()
        if only_if_absent and _live(self._values, key) is not None:
            return False
        self._values[key] = _Item(_deadline(ttl), value)
        return True

    async def get_value(self, key: str) -> str | None:
        item = _live(self._values, key)
        return None if item is None else item.value

    async def delete_value(self, key: str) -> bool:
        return _live(self._values, key) is not None and self._values.pop(key, None) is not None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for receivers in list(self._subscribers.values()):
            for subscription in list(receivers):
                self._unsubscribe(subscription)
