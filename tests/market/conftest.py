"""Fixtures for the market tests: fake exchanges on 127.0.0.1, a Valkey-backed cache,
a migrated database, and settings that point the feeds at the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sage.observability.metrics import Metrics
from sage.settings import Settings
from sage.store.cache import Cache
from sage.store.cache_setup import create_backend
from sage.store.db import Database, create_engine
from tests.market.fakes import FakeBinance, FakeFearGreed, FakeGateio
from tests.market.fakes_rest import FakeBinanceRest, FakeGateioRest, Market

# What the REST fakes list by default: the configured symbols and a few to demand.
DEFAULT_MARKETS = [
    ("BTC", "USDT", "97000.10", "Bitcoin"),
    ("ETH", "USDT", "3400.25", "Ethereum"),
    ("LINK", "USDT", "14.2100", "Chainlink"),
    ("ADA", "USDT", "0.7010", "Cardano"),
    ("DOT", "USDT", "4.5000", "Polkadot"),
    ("ETH", "BTC", "0.03500", "Ethereum"),
]


def default_markets() -> list[Market]:
    return [Market(base, quote, price, name) for base, quote, price, name in DEFAULT_MARKETS]


@pytest.fixture
async def binance() -> AsyncIterator[FakeBinance]:
    server = FakeBinance()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def gateio() -> AsyncIterator[FakeGateio]:
    server = FakeGateio()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def binance_rest() -> AsyncIterator[FakeBinanceRest]:
    server = FakeBinanceRest(markets=default_markets())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def gateio_rest() -> AsyncIterator[FakeGateioRest]:
    server = FakeGateioRest(markets=default_markets())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fng_server() -> AsyncIterator[FakeFearGreed]:
    server = FakeFearGreed()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def cache(valkey_url: str, metrics: Metrics) -> AsyncIterator[Cache]:
    c = Cache(create_backend(valkey_url), on_error=lambda: metrics.incr("ValkeyErrors"))
    yield c
    await c.close()


@pytest.fixture
async def db(make_settings: Callable[..., Settings], database_url: str) -> AsyncIterator[Database]:
    settings = make_settings(database_url=database_url)
    database = Database(create_engine(settings, database_url))
    yield database
    await database.dispose()


@pytest.fixture
def live_settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    valkey_url: str,
    binance: FakeBinance,
    gateio: FakeGateio,
    fng_server: FakeFearGreed,
    binance_rest: FakeBinanceRest,
    gateio_rest: FakeGateioRest,
) -> Callable[..., Settings]:
    """Settings for an ingestor on the fakes, with short intervals (tests wait on conditions)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "valkey_url": valkey_url,
            "market_source": "live",
            "symbols": "BTC/USDT,ETH/USDT",
            "binance_ws_url": binance.url,
            "gateio_ws_url": gateio.url,
            "fng_url": fng_server.url,
            "binance_rest_url": binance_rest.url,
            "gateio_rest_url": gateio_rest.url,
            "fng_poll_seconds": 1.0,
            "feed_backoff_initial_seconds": 0.05,
            "feed_backoff_max_seconds": 0.4,
            "feed_backoff_reset_seconds": 0.3,
            "feed_lease_seconds": 3.0,
            "feed_watchdog_seconds": 10.0,
        }
        values.update(overrides)
        return make_settings(**values)

    return make
