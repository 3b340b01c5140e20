"""One contract, two implementations: the in-process backend (embedded default) and Valkey."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sage.store.cache import CacheBackend
from sage.store.cache_memory import MemoryBackend
from sage.store.cache_valkey import ValkeyBackend


@pytest.fixture(params=["memory", "valkey"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    if request.param == "memory":
        b: CacheBackend = MemoryBackend()
    else:
        b = ValkeyBackend(request.getfixturevalue("valkey_server_url"))
        assert isinstance(b, ValkeyBackend)
        await b.client.flushdb()
    yield b
    await b.close()


async def test_get_returns_what_was_set(backend: CacheBackend) -> None:
    await backend.set("k", b"v")
    assert await backend.get("k") == b"v"


async def test_missing_key_reads_as_none(backend: CacheBackend) -> None:
    assert await backend.get("absent") is None


async def test_value_expires_after_its_ttl(backend: CacheBackend) -> None:
    await backend.set("short", b"v", ttl=0.2)
    assert await backend.get("short") == b"v"
    remaining = await backend.ttl("short")
    assert remaining is not None and 0 < remaining <= 0.2
    await asyncio.sleep(0.35)
    assert await backend.get("short") is None


async def test_set_nx_does_not_overwrite(backend: CacheBackend) -> None:
    assert await backend.set("nx", b"first", nx=True) is True
    assert await backend.set("nx", b"second", nx=True) is False
    assert await backend.get("nx") == b"first"


async def test_set_many_and_get_many_keep_order(backend: CacheBackend) -> None:
    await backend.set_many({"a": b"1", "b": b"2"}, ttl=10)
    assert await backend.get_many(["b", "missing", "a"]) == [b"2", None, b"1"]


async def test_delete_reports_how_many_keys_existed(backend: CacheBackend) -> None:
    await backend.set("d1", b"x")
    assert await backend.delete("d1", "d2") == 1
    assert await backend.get("d1") is None


async def test_keys_match_a_glob_pattern(backend: CacheBackend) -> None:
    await backend.set_many({"t:BTC": b"1", "t:ETH": b"2", "other": b"3"})
    assert sorted(await backend.keys("t:*")) == ["t:BTC", "t:ETH"]


async def test_fixed_window_counts_hits_and_resets(backend: CacheBackend) -> None:
    first = await backend.hit_window("w", 0.3)
    second = await backend.hit_window("w", 0.3)
    assert (first.count, second.count) == (1, 2)
    assert 0 < second.retry_after <= 0.3
    await asyncio.sleep(0.4)
    assert (await backend.hit_window("w", 0.3)).count == 1


async def test_token_bucket_refuses_when_empty_and_says_how_long_to_wait(backend: CacheBackend) -> None:
    assert await backend.take_token("tb", capacity=2, refill_per_second=1) == 0
    assert await backend.take_token("tb", capacity=2, refill_per_second=1) == 0
    wait = await backend.take_token("tb", capacity=2, refill_per_second=1)
    assert 0 < wait <= 1.0


async def test_token_bucket_refills_over_time(backend: CacheBackend) -> None:
    assert await backend.take_token("tb2", capacity=1, refill_per_second=10) == 0
    assert await backend.take_token("tb2", capacity=1, refill_per_second=10) > 0
    await asyncio.sleep(0.25)
    assert await backend.take_token("tb2", capacity=1, refill_per_second=10) == 0


async def test_lease_belongs_to_one_owner_until_released(backend: CacheBackend) -> None:
    assert await backend.acquire_lease("lease", "a", ttl=5) is True
    assert await backend.acquire_lease("lease", "b", ttl=5) is False
    assert await backend.acquire_lease("lease", "a", ttl=5) is True  # renewal by the holder
    assert await backend.release_lease("lease", "b") is False
    assert await backend.release_lease("lease", "a") is True
    assert await backend.acquire_lease("lease", "b", ttl=5) is True


async def test_lease_lapses_when_not_renewed(backend: CacheBackend) -> None:
    assert await backend.acquire_lease("lapse", "a", ttl=0.2) is True
    await asyncio.sleep(0.3)
    assert await backend.acquire_lease("lapse", "b", ttl=5) is True


async def test_published_messages_reach_subscribers(backend: CacheBackend) -> None:
    async with backend.subscribe("news") as sub:
        await asyncio.sleep(0.05)  # Valkey: let SUBSCRIBE register before publishing
        await backend.publish("news", b"hello")
        iterator = sub.__aiter__()
        channel, payload = await asyncio.wait_for(iterator.__anext__(), 5)
    assert (channel, payload) == ("news", b"hello")


async def test_pattern_subscription_receives_matching_channels_only(backend: CacheBackend) -> None:
    async with backend.subscribe("tick:*") as sub:
        await asyncio.sleep(0.05)
        await backend.publish("other", b"no")
        await backend.publish("tick:BTC", b"yes")
        iterator = sub.__aiter__()
        channel, payload = await asyncio.wait_for(iterator.__anext__(), 5)
    assert (channel, payload) == ("tick:BTC", b"yes")


async def test_ping_succeeds_on_a_live_backend(backend: CacheBackend) -> None:
    await backend.ping()


async def test_sorted_set_reports_new_members_and_ranks_by_score(backend: CacheBackend) -> None:
    assert await backend.zadd("z", {"a": 1.0, "b": 3.0}, ttl=60) == 2
    assert await backend.zadd("z", {"a": 5.0, "c": 2.0}, ttl=60) == 1  # "a" only rescored
    assert await backend.zrange_desc("z", 2.0, 10) == [("a", 5.0), ("b", 3.0), ("c", 2.0)]
    assert await backend.zrange_desc("z", 0.0, 1) == [("a", 5.0)]
    assert await backend.zrem_below("z", 3.0) == 1  # "c"
    assert [m for m, _ in await backend.zrange_desc("z", 0.0, 10)] == ["a", "b"]
    remaining = await backend.ttl("z")
    assert remaining is not None and 0 < remaining <= 60
    assert await backend.zrange_desc("missing", 0.0, 10) == []


async def test_values_and_messages_go_together_and_each_part_reports_success(backend: CacheBackend) -> None:
    async with backend.subscribe("ticks") as sub:
        await asyncio.sleep(0.05)  # Valkey: let SUBSCRIBE register before publishing
        outcome = await backend.set_many_and_publish({"p:BTC": b"1", "p:ETH": b"2"}, 10, "ticks", [b"m1", b"m2"])
        iterator = sub.__aiter__()
        received = [await asyncio.wait_for(iterator.__anext__(), 5) for _ in range(2)]
    assert outcome == [None, None, None]
    assert received == [("ticks", b"m1"), ("ticks", b"m2")]
    assert await backend.get_many(["p:BTC", "p:ETH"]) == [b"1", b"2"]
    remaining = await backend.ttl("p:BTC")
    assert remaining is not None and 0 < remaining <= 10
