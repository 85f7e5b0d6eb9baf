"""Conformance suite for the coordination backends: every test taking ``coordination`` runs on both.

Timings are generous on purpose: a short TTL (0.2 s) is followed by a sleep well past it, and "returns
promptly" means "well before a long timeout", never a tight bound.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from claude_agent_api.kit.coordination import (
    CoordinationBackend,
    CoordinationUnavailable,
    LogEntry,
    RedisCoordination,
    create_coordination,
)
from tests.kit.conftest import CoordinationFactory, clean_namespace
from tests.support import services

SHORT_TTL = 0.2
PAST_SHORT_TTL = 0.4


# -- locks -----------------------------------------------------------------------------------------


async def test_lock_is_exclusive(coordination: CoordinationBackend) -> None:
    token = await coordination.acquire_lock("session:1", ttl=10)

    assert token
    assert await coordination.acquire_lock("session:1", ttl=10) is None
    assert await coordination.acquire_lock("session:1", ttl=10, token="intruder") is None
    assert await coordination.lock_owner("session:1") == token
    assert await coordination.acquire_lock("session:2", ttl=10) not in (None, token)


async def test_owner_can_reacquire_with_its_token(coordination: CoordinationBackend) -> None:
    assert await coordination.acquire_lock("l", ttl=10, token="mine") == "mine"
    assert await coordination.acquire_lock("l", ttl=10, token="mine") == "mine"
    assert await coordination.lock_owner("l") == "mine"


async def test_one_of_many_concurrent_acquirers_wins(coordination: CoordinationBackend) -> None:
    results = await asyncio.gather(*(coordination.acquire_lock("l", ttl=10) for _ in range(20)))

    winners = [token for token in results if token is not None]
    assert len(winners) == 1
    assert await coordination.lock_owner("l") == winners[0]


async def test_only_the_owner_refreshes_or_releases(coordination: CoordinationBackend) -> None:
    token = await coordination.acquire_lock("l", ttl=10)
    assert token is not None

    assert await coordination.release_lock("l", "wrong") is False
    assert await coordination.refresh_lock("l", "wrong", ttl=10) is False
    assert await coordination.lock_owner("l") == token

    assert await coordination.release_lock("l", token) is True
    assert await coordination.lock_owner("l") is None
    assert await coordination.release_lock("l", token) is False
    assert await coordination.refresh_lock("l", token, ttl=10) is False
    assert await coordination.acquire_lock("l", ttl=10, token="next") == "next"


async def test_expired_lock_can_be_taken_by_another(coordination: CoordinationBackend) -> None:
    token = await coordination.acquire_lock("l", ttl=SHORT_TTL)
    assert token is not None

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await coordination.lock_owner("l") is None
    assert await coordination.lock_ttl("l") is None
    assert await coordination.acquire_lock("l", ttl=10, token="other") == "other"
    assert await coordination.release_lock("l", token) is False
    assert await coordination.refresh_lock("l", token, ttl=10) is False


async def test_refresh_extends_the_lock(coordination: CoordinationBackend) -> None:
    token = await coordination.acquire_lock("l", ttl=SHORT_TTL)
    assert token is not None

    assert await coordination.refresh_lock("l", token, ttl=10) is True
    await asyncio.sleep(PAST_SHORT_TTL)

    assert await coordination.lock_owner("l") == token
    remaining = await coordination.lock_ttl("l")
    assert remaining is not None
    assert 5 < remaining <= 10


async def test_lock_ttl_reports_remaining_seconds(coordination: CoordinationBackend) -> None:
    assert await coordination.lock_ttl("l") is None
    await coordination.acquire_lock("l", ttl=30)

    remaining = await coordination.lock_ttl("l")

    assert remaining is not None
    assert 25 < remaining <= 30


# -- event logs ------------------------------------------------------------------------------------


async def test_concurrent_appends_get_gap_free_sequence_numbers(coordination: CoordinationBackend) -> None:
    seqs = await asyncio.gather(*(coordination.append("run:1", {"writer": i}) for i in range(50)))

    assert sorted(seqs) == list(range(1, 51))
    entries = await coordination.read_after("run:1", 0)
    assert [entry.seq for entry in entries] == list(range(1, 51))
    assert {entry.seq: entry.data["writer"] for entry in entries} == {seq: i for i, seq in enumerate(seqs)}
    assert await coordination.last_seq("run:1") == 50


async def test_concurrent_appends_from_several_instances(coordination_factory: CoordinationFactory) -> None:
    handles = [coordination_factory() for _ in range(3)]

    seqs = await asyncio.gather(*(handles[i % 3].append("run:1", {"i": i}) for i in range(30)))

    assert sorted(seqs) == list(range(1, 31))
    assert await handles[0].last_seq("run:1") == 30


async def test_read_after_returns_exact_ranges(coordination: CoordinationBackend) -> None:
    for i in range(1, 11):
        assert await coordination.append("log", {"n": i}) == i

    assert [e.seq for e in await coordination.read_after("log", 0)] == list(range(1, 11))
    assert [e.seq for e in await coordination.read_after("log", 3)] == list(range(4, 11))
    assert await coordination.read_after("log", 3, limit=2) == [LogEntry(4, {"n": 4}), LogEntry(5, {"n": 5})]
    assert [e.seq for e in await coordination.read_after("log", 8, limit=5)] == [9, 10]
    assert await coordination.read_after("log", 10) == []
    assert await coordination.read_after("log", 99) == []
    assert await coordination.read_after("unknown", 0) == []
    assert await coordination.last_seq("unknown") == 0


async def test_events_round_trip_as_json(coordination: CoordinationBackend) -> None:
    event: dict[str, Any] = {
        "type": "message",
        "text": 'héllo ✓ \n "quoted"',
        "nested": {"list": [1, 2.5, None, True, {"k": "v"}]},
        "empty": {},
    }
    await coordination.append("log", event)

    [entry] = await coordination.read_after("log", 0)
    entry.data["type"] = "mutated by a reader"

    assert (await coordination.read_after("log", 0))[0].data == event


async def test_non_json_events_are_refused(coordination: CoordinationBackend) -> None:
    with pytest.raises(TypeError):
        await coordination.append("log", {"when": object()})
    with pytest.raises(TypeError):
        await coordination.publish("chan", {"when": object()})
    assert await coordination.last_seq("log") == 0


async def test_logs_are_numbered_independently(coordination: CoordinationBackend) -> None:
    assert await coordination.append("a", {}) == 1
    assert await coordination.append("a", {}) == 2
    assert await coordination.append("b", {}) == 1
    assert await coordination.last_seq("a") == 2


async def test_tail_returns_existing_entries_immediately(coordination: CoordinationBackend) -> None:
    for i in range(3):
        await coordination.append("log", {"i": i})

    async with asyncio.timeout(10):
        entries = await coordination.tail("log", 1, timeout=60)

    assert [e.seq for e in entries] == [2, 3]
    assert [e.seq for e in await coordination.tail("log", 0, timeout=60, limit=2)] == [1, 2]


async def test_tail_blocks_until_an_append(coordination_factory: CoordinationFactory) -> None:
    reader, writer = coordination_factory(), coordination_factory()
    await writer.append("log", {"i": 1})
    waiting = asyncio.create_task(reader.tail("log", 1, timeout=30))

    await asyncio.sleep(0.2)
    assert not waiting.done()
    await writer.append("log", {"i": 2})

    async with asyncio.timeout(10):
        entries = await waiting
    assert entries == [LogEntry(2, {"i": 2})]


async def test_tail_waits_for_a_log_that_does_not_exist_yet(coordination: CoordinationBackend) -> None:
    waiting = asyncio.create_task(coordination.tail("new", 0, timeout=30))
    await asyncio.sleep(0.2)

    await coordination.append("new", {"first": True})

    async with asyncio.timeout(10):
        assert await waiting == [LogEntry(1, {"first": True})]


async def test_tail_ignores_appends_to_other_logs(coordination: CoordinationBackend) -> None:
    waiting = asyncio.create_task(coordination.tail("mine", 0, timeout=SHORT_TTL))
    await asyncio.sleep(0.05)

    await coordination.append("other", {})

    assert await waiting == []


async def test_tail_times_out_with_nothing(coordination: CoordinationBackend) -> None:
    await coordination.append("log", {})
    started = time.monotonic()

    assert await coordination.tail("log", 1, timeout=SHORT_TTL) == []
    assert await coordination.tail("unknown", 0, timeout=SHORT_TTL) == []

    assert time.monotonic() - started >= SHORT_TTL


async def test_log_with_ttl_expires_entirely(coordination: CoordinationBackend) -> None:
    await coordination.append("log", {"i": 1}, ttl=SHORT_TTL)
    await coordination.append("log", {"i": 2}, ttl=SHORT_TTL)

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await coordination.read_after("log", 0) == []
    assert await coordination.last_seq("log") == 0
    assert await coordination.append("log", {"i": 1}) == 1


async def test_append_ttl_slides_the_expiry(coordination: CoordinationBackend) -> None:
    await coordination.append("log", {}, ttl=SHORT_TTL)
    await coordination.append("log", {}, ttl=10)

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await coordination.last_seq("log") == 2


async def test_expire_and_delete_log(coordination: CoordinationBackend) -> None:
    await coordination.append("expiring", {})
    await coordination.append("deleted", {})
    await coordination.append("kept", {})

    await coordination.expire_log("expiring", SHORT_TTL)
    await coordination.delete_log("deleted")
    await coordination.expire_log("unknown", SHORT_TTL)
    await coordination.delete_log("unknown")

    assert await coordination.last_seq("deleted") == 0
    assert await coordination.read_after("deleted", 0) == []
    assert await coordination.last_seq("expiring") == 1
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await coordination.read_after("expiring", 0) == []
    assert await coordination.last_seq("expiring") == 0
    assert await coordination.append("deleted", {}) == 1
    assert await coordination.last_seq("kept") == 1


# -- publish/subscribe -----------------------------------------------------------------------------


async def test_subscription_receives_its_channels_only(coordination: CoordinationBackend) -> None:
    async with coordination.subscribe("run:1", "run:2") as subscription:
        assert subscription.channels == frozenset({"run:1", "run:2"})
        assert await coordination.publish("run:1", {"action": "interrupt"}) == 1
        assert await coordination.publish("run:3", {"action": "ignored"}) == 0
        assert await coordination.publish("run:2", {"action": "approve", "id": 7}) == 1

        assert await subscription.get(timeout=5) == ("run:1", {"action": "interrupt"})
        assert await subscription.get(timeout=5) == ("run:2", {"action": "approve", "id": 7})
        assert await subscription.get(timeout=SHORT_TTL) is None


async def test_publish_from_another_instance_reaches_every_subscriber(
    coordination_factory: CoordinationFactory,
) -> None:
    publisher, first, second = (coordination_factory() for _ in range(3))

    async with first.subscribe("c") as one, second.subscribe("c") as two:
        assert await publisher.publish("c", {"n": 1}) == 2

        assert await one.get(timeout=5) == ("c", {"n": 1})
        assert await two.get(timeout=5) == ("c", {"n": 1})


async def test_subscription_iterates_in_publish_order(coordination: CoordinationBackend) -> None:
    async with coordination.subscribe("c") as subscription:
        for n in range(5):
            await coordination.publish("c", {"n": n})

        received = []
        async with asyncio.timeout(10):
            async for channel, message in subscription:
                received.append((channel, message["n"]))
                if len(received) == 5:
                    break

    assert received == [("c", n) for n in range(5)]


async def test_get_wakes_when_a_message_arrives(coordination: CoordinationBackend) -> None:
    async with coordination.subscribe("c") as subscription:
        waiting = asyncio.create_task(subscription.get(timeout=30))
        await asyncio.sleep(0.1)

        await coordination.publish("c", {"late": True})

        async with asyncio.timeout(10):
            assert await waiting == ("c", {"late": True})


async def test_nothing_is_delivered_after_exit(coordination: CoordinationBackend) -> None:
    async with coordination.subscribe("c") as subscription:
        await coordination.publish("c", {"unread": True})

    assert await coordination.publish("c", {"n": 1}) == 0
    assert await subscription.get(timeout=SHORT_TTL) is None
    assert [message async for message in subscription] == []


async def test_leaving_wakes_a_blocked_reader(coordination: CoordinationBackend) -> None:
    async with coordination.subscribe("c") as subscription:
        waiting = asyncio.create_task(subscription.get())
        await asyncio.sleep(0.1)

    async with asyncio.timeout(10):
        assert await waiting is None
    assert await coordination.publish("c", {}) == 0


async def test_close_ends_open_subscriptions(coordination_factory: CoordinationFactory) -> None:
    publisher, subscriber = coordination_factory(), coordination_factory()
    async with subscriber.subscribe("c") as subscription:
        waiting = asyncio.create_task(subscription.get())
        await asyncio.sleep(0.1)

        await subscriber.close()

        async with asyncio.timeout(10):
            assert await waiting is None
        assert await subscription.get(timeout=SHORT_TTL) is None
        assert await publisher.publish("c", {}) == 0


async def test_subscribe_needs_a_channel(coordination: CoordinationBackend) -> None:
    with pytest.raises(ValueError, match="channel"):
        coordination.subscribe()


# -- counters and values ---------------------------------------------------------------------------


async def test_counters_count_atomically(coordination: CoordinationBackend) -> None:
    assert await coordination.get_counter("hits") == 0
    assert await coordination.incr("hits") == 1
    assert await coordination.incr("hits", 5) == 6

    await asyncio.gather(*(coordination.incr("hits") for _ in range(50)))

    assert await coordination.get_counter("hits") == 56
    assert await coordination.delete("hits") is True
    assert await coordination.delete("hits") is False
    assert await coordination.get_counter("hits") == 0


async def test_counter_ttl_is_set_when_created(coordination: CoordinationBackend) -> None:
    assert await coordination.incr("window", ttl=SHORT_TTL) == 1
    assert await coordination.incr("window", ttl=60) == 2  # does not extend the window

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await coordination.get_counter("window") == 0
    assert await coordination.incr("window", ttl=60) == 1


async def test_values_set_get_and_expire(coordination: CoordinationBackend) -> None:
    assert await coordination.get_value("k") is None
    assert await coordination.set_value("k", "one") is True
    assert await coordination.set_value("k", "two", only_if_absent=True) is False
    assert await coordination.get_value("k") == "one"
    assert await coordination.set_value("k", "three") is True
    assert await coordination.get_value("k") == "three"

    assert await coordination.set_value("short", "v", ttl=SHORT_TTL) is True
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await coordination.get_value("short") is None
    assert await coordination.set_value("short", "again", only_if_absent=True) is True
    assert await coordination.get_value("short") == "again"


async def test_key_spaces_are_separate(coordination: CoordinationBackend) -> None:
    await coordination.set_value("x", "value")
    await coordination.incr("x", 3)
    await coordination.acquire_lock("x", ttl=10, token="lock")

    assert await coordination.get_value("x") == "value"
    assert await coordination.get_counter("x") == 3
    assert await coordination.lock_owner("x") == "lock"
    assert await coordination.delete_value("x") is True
    assert await coordination.get_counter("x") == 3


async def test_exactly_one_racing_writer_sets_if_absent(coordination: CoordinationBackend) -> None:
    results = await asyncio.gather(*(coordination.set_value("answer", str(i), only_if_absent=True) for i in range(20)))

    assert results.count(True) == 1
    assert await coordination.get_value("answer") == str(results.index(True))


async def test_exactly_one_racing_deleter_wins(coordination_factory: CoordinationFactory) -> None:
    handles = [coordination_factory() for _ in range(2)]
    await handles[0].set_value("approval:1", "pending")

    results = await asyncio.gather(*(handles[i % 2].delete_value("approval:1") for i in range(20)))

    assert results.count(True) == 1
    assert await handles[1].get_value("approval:1") is None


# -- lifecycle -------------------------------------------------------------------------------------


async def test_ping_and_name(coordination: CoordinationBackend) -> None:
    await coordination.ping()
    assert coordination.name in ("memory", "redis")


async def test_invalid_arguments_are_refused(coordination: CoordinationBackend) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await coordination.acquire_lock("l", ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        await coordination.append("log", {}, ttl=-1)
    with pytest.raises(ValueError, match="limit"):
        await coordination.read_after("log", 0, limit=0)


async def test_create_coordination_picks_the_backend() -> None:
    memory = create_coordination(None)
    redis = create_coordination("redis://127.0.0.1:1/0", namespace="x")
    try:
        assert memory.name == "memory"
        assert redis.name == "redis"
    finally:
        await memory.close()
        await redis.close()


async def test_unreachable_redis_raises_coordination_unavailable_quickly() -> None:
    backend = RedisCoordination("redis://127.0.0.1:1/0", connect_timeout=0.5, command_timeout=2)
    calls: list[Callable[[], Awaitable[object]]] = [
        backend.ping,
        lambda: backend.acquire_lock("l", ttl=1),
        lambda: backend.release_lock("l", "t"),
        lambda: backend.append("log", {}),
        lambda: backend.read_after("log", 0),
        lambda: backend.tail("log", 0, timeout=1),
        lambda: backend.publish("c", {}),
        lambda: backend.incr("n"),
        lambda: backend.set_value("k", "v"),
        lambda: backend.delete_value("k"),
    ]
    started = time.monotonic()
    try:
        for call in calls:
            with pytest.raises(CoordinationUnavailable):
                await call()
        with pytest.raises(CoordinationUnavailable):
            async with backend.subscribe("c"):
                pass
    finally:
        await backend.close()

    assert time.monotonic() - started < 10


@pytest.mark.redis
async def test_redis_close_leaves_no_connection_open() -> None:
    services.require("redis")
    namespace = f"test-{uuid.uuid4().hex}"
    backend = RedisCoordination(services.REDIS_URL, namespace=namespace)
    try:
        await backend.append("log", {})
        tailing = asyncio.create_task(backend.tail("log", 1, timeout=30))
        async with backend.subscribe("c") as subscription:
            reading = asyncio.create_task(subscription.get())
            await asyncio.sleep(0.1)

            await backend.close()

            async with asyncio.timeout(10):
                assert await reading is None
                with pytest.raises(CoordinationUnavailable):
                    await tailing
    finally:
        leaked = await clean_namespace(services.REDIS_URL, namespace)

    assert leaked == 0
