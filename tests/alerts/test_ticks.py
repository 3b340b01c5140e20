"""Tick-driven evaluation: a tick batch published on the market channel wakes the checker,
and a tick pass reads only the ticked symbols that alerts watch."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from sage.alerts.checker import ticked_symbols
from sage.market.pipeline import ticks_channel
from tests.alerts.support import create, inbox, move, services
from tests.chat.support import FakeMarket


def batch(*symbols: str) -> bytes:
    """A tick batch as the ingestor's pipeline publishes it (the fields the checker reads)."""
    return orjson.dumps({"tickers": [{"exchange": "binance", "symbol": s, "last": "1"} for s in symbols]})


async def test_a_published_tick_batch_fires_the_alert_without_waiting_for_the_periodic_pass(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    # conftest puts the periodic pass an hour away: only the tick can fire this alert
    await create(app_client, auth_headers, kind="price_above", symbol="BTC/USDT", threshold="100000")
    move(market_reader, "BTC/USDT", "100250.5")
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    channel = ticks_channel(runtime.cache)
    async with asyncio.timeout(60):
        # published until seen: the checker's subscription may still be opening
        while not await inbox(app_client, auth_headers):
            await runtime.cache.backend.publish(channel, batch("ETH/USDT", "BTC/USDT"))
            await asyncio.sleep(0.05)
    [note] = await inbox(app_client, auth_headers)
    assert note["body"] == "BTC/USDT above 100,000: now 100,250.5."


async def test_a_tick_pass_reads_only_the_watched_symbols_it_concerns(
    app_client: httpx.AsyncClient, auth_headers: dict[str, str], market_reader: FakeMarket
) -> None:
    await create(app_client, auth_headers, kind="price_below", symbol="ETH/USDT", threshold="3000")
    await create(app_client, auth_headers, kind="price_below", symbol="SOL/USDT", threshold="100")
    alerts = services(app_client).price_alerts
    market_reader.calls.clear()
    assert (await alerts.evaluate_symbols(["BTC/USDT", "XRP/USDT"])).fired == []
    assert market_reader.calls == []  # nobody watches them: no price read (it would mark them in demand)
    move(market_reader, "ETH/USDT", "2990")
    move(market_reader, "SOL/USDT", "90")
    result = await alerts.evaluate_symbols(["ETH/USDT", "BTC/USDT", "ETH/USDT"])
    assert market_reader.calls == [["ETH/USDT"]]
    assert [(f.symbol, f.value) for f in result.fired] == [("ETH/USDT", 2990)]  # SOL waits for its own tick


def test_the_symbols_of_a_batch_are_read_and_anything_else_ignored() -> None:
    assert ticked_symbols(batch("BTC/USDT", "ETH/USDT", "BTC/USDT")) == {"BTC/USDT", "ETH/USDT"}
    for junk in (b"not json", b"[]", b'{"tickers": 5}', b'{"tickers": [1, {"symbol": 2}, {}]}', b"{}"):
        assert ticked_symbols(junk) == set(), junk
