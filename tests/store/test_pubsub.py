"""The one subscriber loop (ChannelListener) on a real Valkey, and subscriptions that stay quiet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sage.store.cache import Cache
from sage.store.cache_memory import MemoryBackend
from sage.store.cache_valkey import ValkeyBackend
from sage.store.pubsub import ChannelListener
from tests.market.fakes import eventually

QUIET = 2.5  # longer than the commands' 1 s socket timeout, which once ended quiet subscriptions


@pytest.fixture
async def valkey_cache(valkey_url: str) -> AsyncIterator[Cache]:
    cache = Cache(ValkeyBackend(valkey_url, timeout=1.0))
    yield cache
    await cache.close()


async def test_a_quiet_valkey_subscription_still_receives_the_next_message(valkey_url: str) -> None:
    backend = ValkeyBackend(valkey_url, timeout=1.0)
    try:
        async with backend.subscribe("quiet") as subscription:
            messages = subscription.__aiter__()
            first = asyncio.ensure_future(messages.__anext__())
            await eventually(lambda: backend.client.pubsub_numsub("quiet"))  # subscribed on the server
            await asyncio.sleep(QUIET)
            assert not first.done(), "the subscription ended while the channel was quiet"
            await backend.publish("quiet", b"after a quiet spell")
            assert await asyncio.wait_for(first, 10) == ("quiet", b"after a quiet spell")
    finally:
        await backend.close()


async def test_the_listener_keeps_one_subscription_through_a_quiet_spell(valkey_cache: Cache) -> None:
    received: list[bytes] = []
    listener = ChannelListener(valkey_cache, "news", received.append, name="test-listener")
    listener.start()
    try:
        await eventually(listener.subscribed.is_set)
        await valkey_cache.backend.publish("news", b"one")
        await eventually(lambda: received == [b"one"])
        await asyncio.sleep(QUIET)
        await valkey_cache.backend.publish("news", b"two")
        await eventually(lambda: received == [b"one", b"two"])
        assert listener.subscriptions == 1, "never resubscribed: nothing published meanwhile could be missed"
    finally:
        await listener.stop()
    assert not listener.subscribed.is_set() and not listener.running


async def test_the_listener_subscribes_again_after_valkey_drops_the_connection(valkey_cache: Cache) -> None:
    received: list[bytes] = []
    listener = ChannelListener(valkey_cache, "news", received.append, name="test-listener")
    listener.start()
    try:
        await eventually(listener.subscribed.is_set)
        backend = valkey_cache.backend
        assert isinstance(backend, ValkeyBackend)
        await backend.client.client_kill_filter(_type="pubsub")
        await eventually(lambda: listener.subscriptions == 2 and listener.subscribed.is_set())
        await backend.publish("news", b"back")
        await eventually(lambda: received == [b"back"])
        assert valkey_cache.errors >= 1, "the outage was reported through the cache"
    finally:
        await listener.stop()


async def test_a_message_the_callback_cannot_handle_costs_only_that_message() -> None:
    cache = Cache(MemoryBackend())
    received: list[bytes] = []

    def on_message(payload: bytes) -> None:
        if payload == b"bad":
            raise ValueError("unreadable")
        received.append(payload)

    listener = ChannelListener(cache, "news", on_message, name="test-listener")
    listener.start()
    try:
        await eventually(listener.subscribed.is_set)
        await cache.backend.publish("news", b"bad")
        await cache.backend.publish("news", b"good")
        await eventually(lambda: received == [b"good"])
        assert listener.subscriptions == 1
    finally:
        await listener.stop()
