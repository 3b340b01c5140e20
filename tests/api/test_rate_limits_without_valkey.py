"""With Valkey down, rate limits fall back to this process's own counters with the same
parameters: never to no limit at all (the issue measured 14 of 14 chat messages accepted
against a limit of 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sage.app import create_app
from sage.errors import RateLimited
from sage.settings import Settings
from sage.store.cache import Cache
from sage.store.cache_valkey import ValkeyBackend
from sage.store.ratelimit import Limit, RateLimiter
from tests.conftest import register_and_login
from tests.support.servers import ValkeyProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def own_valkey() -> AsyncIterator[ValkeyProcess]:
    server = ValkeyProcess()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def client_with_stoppable_valkey(
    own_valkey: ValkeyProcess, make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url=database_url,
        valkey_url=own_valkey.url,
        valkey_timeout_seconds=0.5,
        auth_rate_limit_per_email=3,
        auth_rate_limit_per_ip=100,
        chat_rate_per_minute=3,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50002))
        async with httpx.AsyncClient(transport=transport, base_url="http://sage.test", timeout=30) as client:
            yield client


async def test_login_attempts_are_still_limited_while_valkey_is_down(
    own_valkey: ValkeyProcess, client_with_stoppable_valkey: httpx.AsyncClient
) -> None:
    client = client_with_stoppable_valkey
    own_valkey.stop()
    codes = [
        (await client.post("/api/v1/auth/login", json={"email": "v@example.com", "password": "wrong-pass"})).status_code
        for _ in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]


async def test_chat_messages_are_still_limited_while_valkey_is_down(
    own_valkey: ValkeyProcess, client_with_stoppable_valkey: httpx.AsyncClient
) -> None:
    client = client_with_stoppable_valkey
    tokens = await register_and_login(client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    chat = (await client.post("/api/v1/chats", json={}, headers=headers)).json()
    own_valkey.stop()
    codes = []
    for i in range(5):
        async with client.stream(
            "POST", f"/api/v1/chats/{chat['id']}/messages", json={"content": f"BTC price? {i}"}, headers=headers
        ) as response:
            codes.append(response.status_code)
            await response.aread()
    assert codes == [200, 200, 200, 429, 429]


async def test_the_fallback_has_the_same_window_as_the_shared_limit(own_valkey: ValkeyProcess) -> None:
    backend = ValkeyBackend(own_valkey.url, timeout=0.5)
    limiter = RateLimiter(Cache(backend))
    limit = Limit("test", 2, 60)
    try:
        await limiter.check(limit, "someone")  # one hit counted in Valkey
        own_valkey.stop()
        await limiter.check(limit, "someone")
        await limiter.check(limit, "someone")
        with pytest.raises(RateLimited) as refused:
            await limiter.check(limit, "someone")
        assert 1 <= refused.value.retry_after <= 60
        assert limiter.cache.errors == 3
    finally:
        await backend.close()


async def test_expired_fallback_counters_are_purged() -> None:
    from sage.store.cache_memory import MemoryBackend

    now = [0.0]
    backend = MemoryBackend(clock=lambda: now[0])
    await backend.hit_window("a", 10)
    await backend.hit_window("b", 100)
    now[0] = 50.0
    assert backend.purge_expired() == 1
    assert await backend.keys("*") == ["b"]
