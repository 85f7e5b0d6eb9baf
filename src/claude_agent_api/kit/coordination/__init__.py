"""Coordination between instances: locks, run event logs, control pub/sub, counters, values.

Build one backend in the lifespan with :func:`create_coordination` and pass it around as
:class:`CoordinationBackend`; the contract is in :mod:`.base`. Without a Redis URL the service runs on
the in-process backend (one instance); with one, any number of instances share state through Redis.
"""

from __future__ import annotations

from .base import CoordinationBackend, CoordinationUnavailable, LogEntry, Message, Subscription
from .memory import MemoryCoordination
from .redis import RedisCoordination

__all__ = [
    "CoordinationBackend",
    "CoordinationUnavailable",
    "LogEntry",
    "MemoryCoordination",
    "Message",
    "RedisCoordination",
    "Subscription",
    "create_coordination",
]


def create_coordination(redis_url: str | None, *, namespace: str = "caa") -> CoordinationBackend:
    """The Redis backend for ``redis_url`` (keys under ``namespace``), or the in-process one for ``None``.

    Nothing connects yet: call ``await backend.ping()`` to check the server, ``await backend.close()`` at
    shutdown.
    """
    if redis_url is None:
        return MemoryCoordination()
    return RedisCoordination(redis_url, namespace=namespace)
