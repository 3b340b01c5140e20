"""The domain-facing Cache: single-flight and fall-through when Valkey is gone."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sage.store.cache import Cache
from sage.store.cache_memory import MemoryBackend
from sage.store.cache_valkey import ValkeyBackend
from tests.support.servers import ValkeyProcess


async def test_cold_key_under_concurrent_requests_is_computed_once(valkey_url: str) -> None:
    cache = Cache(ValkeyBackend(valkey_url))
    calls = 0

    async def compute() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return {"price": 42}

    results = await asyncio.gather(*(cache.get_or_compute("cold", 30, compute) for _ in range(50)))
    assert calls == 1
    assert all(r == {"price": 42} for r in results)
    assert await cache.get_json("cold") == {"price": 42}
    await cache.close()


async def test_cached_value_is_served_without_recomputing() -> None:
    cache = Cache(MemoryBackend())
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return 7

    assert await cache.get_or_compute("k", 30, compute) == 7
    assert await cache.get_or_compute("k", 30, compute) == 7
    assert calls == 1


async def test_a_failed_computation_reaches_every_waiter_and_is_not_cached() -> None:
    cache = Cache(MemoryBackend())

    async def boom() -> int:
        await asyncio.sleep(0.05)
        raise ValueError("source down")

    results = await asyncio.gather(*(cache.get_or_compute("f", 30, boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert await cache.get_json("f") is None


@pytest.fixture
def stopped_valkey() -> ValkeyProcess:
    server = ValkeyProcess()
    server.start()
    server.stop()
    yield server
    server.destroy()


async def test_requests_fall_through_to_the_source_when_valkey_is_down(
    stopped_valkey: ValkeyProcess, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(ValkeyBackend(stopped_valkey.url, timeout=0.2), error_log_interval=60)
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        return "from-source"

    with caplog.at_level(logging.WARNING, logger="sage.store.cache"):
        values = [await cache.get_or_compute("x", 30, compute) for _ in range(5)]
    assert values == ["from-source"] * 5
    assert calls == 5
    assert cache.errors >= 5
    warnings = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(warnings) == 1  # logged once per interval, not once per request
    await cache.close()


async def test_client_reconnects_by_itself_when_valkey_comes_back(stopped_valkey: ValkeyProcess) -> None:
    cache = Cache(ValkeyBackend(stopped_valkey.url, timeout=0.2))
    await cache.set_json("k", 1, 30)  # fails silently: server down
    assert await cache.get_json("k") is None
    stopped_valkey.start()
    await cache.set_json("k", 2, 30)
    assert await cache.get_json("k") == 2
    await cache.close()
