"""Redis coordination backend (``redis.asyncio``): what lets N instances act as one service.

Every key lives under ``<namespace>:<kind>:<name>``, with one kind per key space, so a namespace can be
dropped wholesale (the tests use a random one each):

- ``lock:<name>`` — string holding the owner token, with ``PX`` expiry. Acquire, refresh and release
  are Lua scripts that compare the token first (release is compare-and-delete).
- ``log:<name>`` — a Redis Stream; the entry for sequence number ``n`` has the stream ID ``<n>-0`` and
  one field ``d`` with the event as JSON. ``logseq:<name>`` is the counter that hands out ``n``. One
  Lua script does ``INCR`` + ``XADD`` (+ ``PEXPIRE`` of both keys when a TTL is given), so numbering is
  gap-free under any number of writers. Because IDs are ``<n>-0``, a bare sequence number is a valid
  stream ID: ``read_after(n)`` is ``XRANGE log:<name> n+1 +`` and ``tail`` is ``XREAD BLOCK … n``.
- ``counter:<key>`` — integer string; ``value:<key>`` — string; both with optional ``PX`` expiry.
- pub/sub channel ``<namespace>:chan:<channel>``, payloads as JSON. Each subscription holds its own
  connection; entering it waits for Redis' subscribe confirmation, so it is live when entered.

Failures: connection errors, socket timeouts and commands exceeding ``command_timeout`` seconds raise
:class:`CoordinationUnavailable`. Commands are not retried (an ``append`` retried after a lost reply
could duplicate an event), so a failed call is the caller's to retry or turn into a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import (
    CoordinationBackend,
    CoordinationUnavailable,
    LogEntry,
    Message,
    Subscription,
    check_limit,
    check_ttl,
)

__all__ = ["RedisCoordination"]

# KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. Free or already ours: take it, (re)set the TTL.
_ACQUIRE_LOCK = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms.
_REFRESH_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
# KEYS[1] lock; ARGV[1] token. Compare-and-delete.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
# KEYS[1] seq counter, KEYS[2] stream; ARGV[1] event JSON, ARGV[2] ttl ms (0: leave expiry alone).
# If the counter is missing but the stream is not (keys deleted by hand), resume after the last ID.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if #last > 0 then redis.call('SET', KEYS[1], string.match(last[1][1], '^%d+')) end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], string.format('%d-0', seq), 'd', ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return seq
"""
# KEYS[1] counter; ARGV[1] amount, ARGV[2] ttl ms (0: none), applied only when this creates the key.
_INCR = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if created and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return value
"""

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


@asynccontextmanager
async def _guard(within: float | None) -> AsyncIterator[None]:
    """Bound a Redis call to ``within`` seconds and turn connection trouble into CoordinationUnavailable."""
    try:
        async with asyncio.timeout(within):
            yield
    except _UNAVAILABLE as exc:
        raise CoordinationUnavailable(f"redis is unavailable: {str(exc) or type(exc).__name__}") from exc


def _entries(raw: Iterable[Any]) -> list[LogEntry]:
    return [LogEntry(int(entry_id.split("-", 1)[0]), json.loads(fields["d"])) for entry_id, fields in raw]


class _RedisSubscription(Subscription):
    def __init__(self, pubsub: aioredis.client.PubSub, prefix: str, channels: frozenset[str]) -> None:
        self._pubsub = pubsub
        self._prefix = prefix
        self._channels = channels
        self._pending: deque[Message] = deque()
        self._closed = False
        self._idle = asyncio.Event()  # cleared while a get() is reading from the connection
        self._idle.set()

    @property
    def channels(self) -> frozenset[str]:
        return self._channels

    async def start(self, within: float) -> None:
        """Subscribe and wait (up to ``within`` seconds) until Redis confirmed every channel."""
        unconfirmed = {self._prefix + channel for channel in self._channels}
        async with _guard(within):
            await self._pubsub.subscribe(*unconfirmed)
            while unconfirmed:
                raw = await self._pubsub.get_message(timeout=None)
                if raw is None:
                    continue
                if raw["type"] == "subscribe":
                    unconfirmed.discard(raw["channel"])
                elif raw["type"] == "message":
                    self._pending.append(self._decode(raw))

    def _decode(self, raw: dict[str, Any]) -> Message:
        return raw["channel"].removeprefix(self._prefix), json.loads(raw["data"])

    async def get(self, timeout: float | None = None) -> Message | None:  # noqa: ASYNC109
        if self._closed:
            return None
        if self._pending:
            return self._pending.popleft()
        self._idle.clear()
        try:
            return await self._read(timeout)
        finally:
            self._idle.set()

    async def _read(self, within: float | None) -> Message | None:
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                async with _guard(None):
                    raw = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
            except CoordinationUnavailable:
                if self._closed:
                    return None
                raise
            if self._closed:
                return None
            if raw is not None and raw["type"] == "message":
                return self._decode(raw)
            if remaining is not None and remaining <= 0:
                return None

    async def aclose(self, within: float) -> None:
        """Stop delivering and give the connection back, first letting a blocked reader return.

        Disconnecting under a reader would make redis-py reconnect the connection from that reader after
        it went back to the pool, so the reader is woken with UNSUBSCRIBE (its reply) and awaited first.
        """
        self._closed = True
        self._pending.clear()
        if not self._idle.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(within):
                    await self._pubsub.unsubscribe()
                    await self._idle.wait()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisCoordination(CoordinationBackend):
    """Coordination over Redis; see the module docstring for the key layout."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "caa",
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
    ) -> None:
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=f"{namespace}:coordination",  # shows in CLIENT LIST
        )
        self._ns = namespace
        self._timeout = command_timeout
        self._subscriptions: set[_RedisSubscription] = set()
        self._acquire = self._client.register_script(_ACQUIRE_LOCK)
        self._refresh = self._client.register_script(_REFRESH_LOCK)
        self._release = self._client.register_script(_RELEASE_LOCK)
        self._append = self._client.register_script(_APPEND)
        self._incr = self._client.register_script(_INCR)

    @property
    def name(self) -> Literal["redis"]:
        return "redis"

    @property
    def namespace(self) -> str:
        return self._ns

    def _key(self, kind: str, name: str) -> str:
        return f"{self._ns}:{kind}:{name}"

    # -- locks -------------------------------------------------------------------------------------

    async def acquire_lock(self, name: str, ttl: float, token: str | None = None) -> str | None:
        check_ttl(ttl)
        token = token or secrets.token_hex(16)
        async with _guard(self._timeout):
            acquired = await self._acquire(keys=[self._key("lock", name)], args=[token, _ms(ttl)])
        return token if acquired else None

    async def refresh_lock(self, name: str, token: str, ttl: float) -> bool:
        check_ttl(ttl)
        async with _guard(self._timeout):
            return bool(await self._refresh(keys=[self._key("lock", name)], args=[token, _ms(ttl)]))

    async def release_lock(self, name: str, token: str) -> bool:
        async with _guard(self._timeout):
            return bool(await self._release(keys=[self._key("lock", name)], args=[token]))

    async def lock_owner(self, name: str) -> str | None:
        async with _guard(self._timeout):
            owner: str | None = await self._client.get(self._key("lock", name))
        return owner

    async def lock_ttl(self, name: str) -> float | None:
        async with _guard(self._timeout):
            remaining: int = await self._client.pttl(self._key("lock", name))
        return remaining / 1000 if remaining >= 0 else None

    # -- event logs --------------------------------------------------------------------------------

    def _log_keys(self, log: str) -> list[str]:
        return [self._key("logseq", log), self._key("log", log)]

    async def append(self, log: str, event: dict[str, Any], *, ttl: float | None = None) -> int:
        check_ttl(ttl)
        payload = json.dumps(event, separators=(",", ":"))
        async with _guard(self._timeout):
            seq = await self._append(keys=self._log_keys(log), args=[payload, 0 if ttl is None else _ms(ttl)])
        return int(seq)

    async def read_after(self, log: str, after: int, limit: int | None = None) -> list[LogEntry]:
        check_limit(limit)
        async with _guard(self._timeout):
            raw = await self._client.xrange(self._key("log", log), min=max(after, 0) + 1, count=limit)
        return _entries(raw)

    async def tail(
        self,
        log: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 - the server blocks (XREAD BLOCK), not a cancellation
        *,
        limit: int | None = None,
    ) -> list[LogEntry]:
        check_limit(limit)
        if timeout <= 0:
            return await self.read_after(log, after, limit)
        key = self._key("log", log)
        async with _guard(timeout + self._timeout):
            reply = await self._client.xread({key: max(after, 0)}, count=limit, block=_ms(timeout))
        if not reply:
            return []
        # RESP2: [[key, entries]]; RESP3: {key: [entries]}
        batches = [b for bs in reply.values() for b in bs] if isinstance(reply, dict) else [b for _, b in reply]
        return [entry for batch in batches for entry in _entries(batch)]

    async def last_seq(self, log: str) -> int:
        async with _guard(self._timeout):
            seq: str | None = await self._client.get(self._key("logseq", log))
        return int(seq or 0)

    async def expire_log(self, log: str, ttl: float) -> None:
        check_ttl(ttl)
        async with _guard(self._timeout), self._client.pipeline(transaction=True) as pipe:
            for key in self._log_keys(log):
                pipe.pexpire(key, _ms(ttl))
            await pipe.execute()

    async def delete_log(self, log: str) -> None:
        async with _guard(self._timeout):
            await self._client.delete(*self._log_keys(log))

    # -- publish/subscribe -------------------------------------------------------------------------

    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        payload = json.dumps(message, separators=(",", ":"))
        async with _guard(self._timeout):
            receivers: int = await self._client.publish(self._key("chan", channel), payload)
        return receivers

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        return self._subscription(frozenset(channels))

    @asynccontextmanager
    async def _subscription(self, channels: frozenset[str]) -> AsyncIterator[Subscription]:
        subscription = _RedisSubscription(self._client.pubsub(), self._key("chan", ""), channels)
        try:
            await subscription.start(self._timeout)
            self._subscriptions.add(subscription)
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            await subscription.aclose(self._timeout)

    # -- counters ----------------------------------------------------------------------------------

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        check_ttl(ttl)
        async with _guard(self._timeout):
            value = await self._incr(keys=[self._key("counter", key)], args=[amount, 0 if ttl is None else _ms(ttl)])
        return int(value)

    async def get_counter(self, key: str) -> int:
        async with _guard(self._timeout):
            value: str | None = await self._client.get(self._key("counter", key))
        return int(value or 0)

    async def delete(self, key: str) -> bool:
        async with _guard(self._timeout):
            return bool(await self._client.delete(self._key("counter", key)))

    # -- values ------------------------------------------------------------------------------------

    async def set_value(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        check_ttl(ttl)
        px = None if ttl is None else _ms(ttl)
        async with _guard(self._timeout):
            return bool(await self._client.set(self._key("value", key), value, px=px, nx=only_if_absent))

    async def get_value(self, key: str) -> str | None:
        async with _guard(self._timeout):
            value: str | None = await self._client.get(self._key("value", key))
        return value

    async def delete_value(self, key: str) -> bool:
        async with _guard(self._timeout):
            return bool(await self._client.delete(self._key("value", key)))

    # -- lifecycle ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        async with _guard(self._timeout):
            await cast("Awaitable[bool]", self._client.ping())

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.aclose(self._timeout)
        self._subscriptions.clear()
        await self._client.aclose()
