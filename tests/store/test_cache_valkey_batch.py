"""The one-round-trip write of the market flush against a Valkey that refuses or is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sage.store.cache import CacheUnavailable
from sage.store.cache_valkey import ValkeyBackend
from tests.support.servers import ValkeyProcess


@pytest.fixture
def own_valkey() -> Iterator[ValkeyProcess]:
    """A private server: these tests change its configuration or stop it."""
    server = ValkeyProcess()
    server.start()
    yield server
    server.destroy()


async def test_a_refused_write_comes_back_in_place_and_the_publishes_still_go(own_valkey: ValkeyProcess) -> None:
    backend = ValkeyBackend(own_valkey.url)
    try:
        # Full under `noeviction`: Valkey refuses writes (OOM) but still delivers PUBLISH.
        await backend.client.config_set("maxmemory-policy", "noeviction")
        await backend.client.config_set("maxmemory", "1")
        outcome = await backend.set_many_and_publish({"k": b"v"}, 10, "ticks", [b"m"])
    finally:
        await backend.client.config_set("maxmemory", "0")
        await backend.close()
    refused, published = outcome
    assert isinstance(refused, Exception) and "maxmemory" in str(refused)
    assert published is None


async def test_an_unreachable_valkey_fails_every_part_as_unavailable(own_valkey: ValkeyProcess) -> None:
    backend = ValkeyBackend(own_valkey.url, timeout=0.5)
    own_valkey.stop()
    try:
        outcome = await backend.set_many_and_publish({"k": b"v"}, 10, "ticks", [b"m1", b"m2"])
    finally:
        await backend.close()
    assert len(outcome) == 3
    assert all(isinstance(part, CacheUnavailable) for part in outcome)
