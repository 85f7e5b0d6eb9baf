"""The coordination backend: what instances of the service share that is not durable.

One abstract interface, :class:`CoordinationBackend`, with two implementations that pass the same
conformance suite (``tests/kit/test_coordination.py``): :mod:`.memory` (one process, the embedded
default) and :mod:`.redis` (N instances). Nothing here must survive a restart: durable state lives in
SQL. All methods are coroutines and safe to call from many tasks at once.

Capabilities and their contract:

Locks (``acquire_lock``, ``refresh_lock``, ``release_lock``, ``lock_owner``, ``lock_ttl``)
    A lock is a name held by an owner token for a TTL. ``acquire_lock`` returns the owner token (a random
    one when none is given) or ``None`` when someone else holds the lock; acquiring again with the current
    owner's token succeeds and resets the TTL. Only the owner may refresh or release (compare-and-delete);
    both return whether they did. An expired lock is free. ``lock_ttl`` gives the remaining seconds (for
    ``Retry-After``) or ``None`` when the lock is free.

Event logs (``append``, ``read_after``, ``tail``, ``last_seq``, ``expire_log``, ``delete_log``)
    Append-only logs keyed by a string. Each entry gets the next per-log sequence number, starting at 1,
    with no gaps and no duplicates however many writers append at once. Events are JSON-serialisable dicts
    (anything else raises ``TypeError``); readers get fresh copies. ``read_after(log, n)`` returns the
    entries with ``seq > n`` in order, at most ``limit``. ``tail`` does the same but, when there are none
    yet, waits up to ``timeout`` seconds for the next append and returns ``[]`` if nothing came. Passing
    ``ttl`` to ``append`` (re)sets the expiry of the whole log; when a log expires or is deleted it is gone
    entirely and numbering restarts at 1.

Publish/subscribe (``publish``, ``subscribe``)
    Fire-and-forget control messages (JSON-serialisable dicts) on named channels; ``publish`` returns how
    many subscriptions received it. ``subscribe(*channels)`` is an async context manager yielding a
    :class:`Subscription`; the subscription is effective once ``__aenter__`` returns, so a message
    published after that is delivered. Leaving the context (or ``close()`` on the backend) releases its
    resources; nothing is delivered afterwards. Messages published while nobody listens are lost.

Counters (``incr``, ``get_counter``, ``delete``)
    Atomic integers, 0 when absent. ``incr(..., ttl=)`` sets the expiry only when it creates the key, so
    a fixed window counts from its first hit. ``delete`` removes a counter.

Values (``set_value``, ``get_value``, ``delete_value``)
    Strings with optional expiry. ``set_value(..., only_if_absent=True)`` and ``delete_value`` are atomic
    and report whether they took effect, so exactly one of several racing callers wins.

Counters, values, locks, logs and channels are separate key spaces: the same name in two of them refers
to two different things.

Errors: a backend that cannot reach its server raises :class:`CoordinationUnavailable` from any method
(callers map it to 503). Invalid arguments (a non-positive TTL, an empty channel list) raise
``ValueError``.
"""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CoordinationBackend", "CoordinationUnavailable", "LogEntry", "Message", "Subscription"]

Message = tuple[str, dict[str, Any]]
"""A received pub/sub message: ``(channel, payload)``."""


class CoordinationUnavailable(Exception):
    """The coordination server cannot be reached (connection refused, timed out, dropped)."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of an event log: its sequence number (from 1) and its event."""

    seq: int
    data: dict[str, Any]


class Subscription(abc.ABC):
    """Messages received on the subscribed channels, in the order each channel published them.

    Iterate it with ``async for channel, message in subscription``; iteration ends when the subscription
    is closed. Use :meth:`get` to wait with a timeout rather than cancelling a pending read. Read it from one
    task at a time.
    """

    @property
    @abc.abstractmethod
    def channels(self) -> frozenset[str]:
        """The channels this subscription listens to."""

    @abc.abstractmethod
    async def get(self, timeout: float | None = None) -> Message | None:  # noqa: ASYNC109
        """The next message; ``None`` after ``timeout`` seconds without one, or once closed."""

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        message = await self.get()
        if message is None:
            raise StopAsyncIteration
        return message


class CoordinationBackend(abc.ABC):
    """Locks, event logs, pub/sub, counters and values shared by the instances of the service."""

    @property
    @abc.abstractmethod
    def name(self) -> Literal["memory", "redis"]:
        """Which implementation this is."""

    # -- locks -------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def acquire_lock(self, name: str, ttl: float, token: str | None = None) -> str | None:
        """Take ``name`` for ``ttl`` seconds; the owner token, or ``None`` if another owner holds it."""

    @abc.abstractmethod
    async def refresh_lock(self, name: str, token: str, ttl: float) -> bool:
        """Reset the TTL of a lock held by ``token``; ``False`` if ``token`` does not hold it."""

    @abc.abstractmethod
    async def release_lock(self, name: str, token: str) -> bool:
        """Release a lock held by ``token``; ``False`` (and nothing changes) otherwise."""

    @abc.abstractmethod
    async def lock_owner(self, name: str) -> str | None:
        """The token holding ``name``, or ``None`` if it is free."""

    @abc.abstractmethod
    async def lock_ttl(self, name: str) -> float | None:
        """Seconds until ``name`` expires, or ``None`` if it is free."""

    # -- event logs --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def append(self, log: str, event: dict[str, Any], *, ttl: float | None = None) -> int:
        """Append ``event`` to ``log`` and return its sequence number; ``ttl`` (re)sets the log's expiry."""

    @abc.abstractmethod
    async def read_after(self, log: str, after: int, limit: int | None = None) -> list[LogEntry]:
        """Entries with ``seq > after``, oldest first, at most ``limit`` of them."""

    @abc.abstractmethod
    async def tail(
        self,
        log: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 - backends pass it to the server (XREAD BLOCK)
        *,
        limit: int | None = None,
    ) -> list[LogEntry]:
        """Like :meth:`read_after`, but wait up to ``timeout`` seconds for an entry if there is none."""

    @abc.abstractmethod
    async def last_seq(self, log: str) -> int:
        """The sequence number of the newest entry, 0 for an empty or unknown log."""

    @abc.abstractmethod
    async def expire_log(self, log: str, ttl: float) -> None:
        """Make ``log`` disappear ``ttl`` seconds from now (no-op for an unknown log)."""

    @abc.abstractmethod
    async def delete_log(self, log: str) -> None:
        """Remove ``log`` now; numbering restarts at 1."""

    # -- publish/subscribe -------------------------------------------------------------------------

    @abc.abstractmethod
    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Send ``message`` to the current subscribers of ``channel``; how many received it."""

    @abc.abstractmethod
    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        """Listen to ``channels``; effective when the context manager has been entered."""

    # -- counters ----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` applies only if this creates the counter."""

    @abc.abstractmethod
    async def get_counter(self, key: str) -> int:
        """The counter's value, 0 when absent or expired."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove a counter; whether it existed."""

    # -- values ------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def set_value(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        """Store ``value``; with ``only_if_absent``, only if ``key`` is unset (returns whether it stored)."""

    @abc.abstractmethod
    async def get_value(self, key: str) -> str | None:
        """The stored value, or ``None`` when absent or expired."""

    @abc.abstractmethod
    async def delete_value(self, key: str) -> bool:
        """Remove ``key``; ``True`` for exactly one caller when several race to delete it."""

    # -- lifecycle ---------------------------------------------------------------------------------

    @abc.abstractmethod
    async def ping(self) -> None:
        """Return if the backend works, raise :class:`CoordinationUnavailable` if not."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close open subscriptions and release connections; idempotent. Do not use the backend after."""


def check_ttl(ttl: float | None) -> None:
    """Raise ``ValueError`` unless ``ttl`` is ``None`` or a positive number of seconds."""
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be positive, got {ttl!r}")


def check_limit(limit: int | None) -> None:
    """Raise ``ValueError`` unless ``limit`` is ``None`` or at least 1."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
