from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sage.settings import Settings
from tests.chat.fake_anthropic import FakeAnthropic
from tests.chat.support import FakeMarket, LiveServer, start_live_server


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def fake_market() -> FakeMarket:
    return FakeMarket()


@pytest.fixture
def chat_settings(
    make_settings: Callable[..., Settings], database_url: str, valkey_url: str, fake_anthropic: FakeAnthropic
) -> Callable[..., Settings]:
    """Settings for the anthropic provider pointed at the fake, on the test's PostgreSQL and Valkey."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "valkey_url": valkey_url,
            "llm_provider": "anthropic",
            "anthropic_api_key": "sk-test-not-a-real-key",
            "anthropic_base_url": fake_anthropic.base_url,
            "symbols": "BTC/USDT,ETH/USDT,SOL/USDT",
        }
        values.update(overrides)
        return make_settings(**values)

    return make


@pytest.fixture
async def live_server(fake_market: FakeMarket) -> AsyncIterator[Callable[..., Any]]:
    """Factory: start the app under uvicorn with the fake market; all are stopped afterwards."""
    started: list[LiveServer] = []

    async def start(settings: Settings, **kwargs: Any) -> LiveServer:
        kwargs.setdefault("market", fake_market)
        server = await start_live_server(settings, **kwargs)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()
