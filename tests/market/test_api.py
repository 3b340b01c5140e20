"""The public market endpoints, reading what the pipeline wrote to the shared Valkey."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from sage.market.candles import CandleAggregator, CandleStore
from sage.market.history import FearGreedSink
from sage.market.models import FearGreedReading
from sage.market.pipeline import MarketPipeline
from sage.store.cache import Cache
from tests.market.helpers import ticker


async def seed(cache: Cache, metrics, *tickers) -> None:
    pipeline = MarketPipeline(cache, metrics)
    for t in tickers:
        assert pipeline.submit(t)
    await pipeline.flush()


@pytest.fixture
async def seeded(cache, metrics):
    now = datetime.now(UTC)
    await seed(
        cache,
        metrics,
        ticker("BTC/USDT", "97000.0", at=now, age=2),
        ticker("BTC/USDT", "97100.0", exchange="gateio", at=now, age=1),
        ticker("ETH/USDT", "3400.25", at=now, age=1),
    )
    return now


async def test_tickers_are_public_and_show_consolidated_and_per_exchange_prices(app_client, seeded):
    response = await app_client.get("/api/v1/market/tickers")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "off"  # this API process ingests nothing itself
    by_symbol = {t["symbol"]: t for t in body["tickers"]}
    assert list(by_symbol) == ["BTC/USDT", "ETH/USDT"]
    btc = by_symbol["BTC/USDT"]
    assert btc["price"] == "97050.0"
    assert btc["exchanges"]["binance"]["last"] == "97000.0"
    assert btc["exchanges"]["gateio"]["bid"] == "97100.0"
    assert 0 <= btc["exchanges"]["binance"]["age_seconds"] < 120
    assert btc["stale"] is False and btc["diverged"] is False
    assert "SOL/USDT" in body["missing"]


@pytest.mark.parametrize("spelling", ["BTC", "BTCUSDT", "BTC/USDT", "btc_usdt", "btc-usdt", "BTC%2FUSDT"])
async def test_one_ticker_accepts_every_symbol_spelling(app_client, seeded, spelling):
    response = await app_client.get(f"/api/v1/market/tickers/{spelling}")
    assert response.status_code == 200, response.text
    assert response.json()["symbol"] == "BTC/USDT"


async def test_an_unknown_symbol_is_a_404_that_names_it(app_client, seeded):
    response = await app_client.get("/api/v1/market/tickers/FOO")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "FOO/USDT" in response.json()["error"]["message"]
    bad = await app_client.get("/api/v1/market/tickers/%40%40%40")
    assert bad.status_code == 422  # not a symbol at all: the path's documented pattern refuses it
    assert bad.json()["error"]["details"][0]["field"] == "symbol"


async def test_a_configured_symbol_without_data_yet_is_unavailable_not_unknown(app_client, seeded):
    response = await app_client.get("/api/v1/market/tickers/SOL")
    assert response.status_code == 503
    assert "SOL/USDT" in response.json()["error"]["message"]
    assert response.headers["retry-after"]


async def test_old_tickers_are_served_marked_stale(app_client, cache, metrics):
    await seed(cache, metrics, ticker("XRP/USDT", "2.30", at=datetime.now(UTC), age=600))
    body = (await app_client.get("/api/v1/market/tickers/XRP")).json()
    assert body["stale"] is True
    assert body["exchanges"]["binance"]["stale"] is True
    assert body["age_seconds"] >= 600


async def test_exchanges_that_disagree_are_flagged_diverged(app_client, cache, metrics):
    now = datetime.now(UTC)
    await seed(
        cache,
        metrics,
        ticker("DOGE/USDT", "0.3200", at=now),
        ticker("DOGE/USDT", "0.3300", exchange="gateio", at=now),
    )
    body = (await app_client.get("/api/v1/market/tickers/DOGE")).json()
    assert body["diverged"] is True
    assert body["spread_pct"] == "3.1250"


async def test_a_symbol_filter_limits_the_list(app_client, seeded):
    body = (await app_client.get("/api/v1/market/tickers", params={"symbols": "eth,BTCUSDT"})).json()
    assert [t["symbol"] for t in body["tickers"]] == ["ETH/USDT", "BTC/USDT"]
    assert body["missing"] == []


async def test_candles_come_from_the_history_table(app_client, db, metrics):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    agg = CandleAggregator()
    for minute, price in enumerate(["100", "101", "99"]):
        agg.add(ticker("BTC/USDT", price, exchange="gateio", at=start + timedelta(minutes=minute, seconds=5)))
    await CandleStore(db, agg, metrics, retention_days=30).flush()
    response = await app_client.get("/api/v1/market/candles/btc_usdt", params={"exchange": "gateio", "limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["symbol"], body["exchange"], body["interval"]) == ("BTC/USDT", "gateio", "1m")
    assert [c["close"] for c in body["candles"]] == ["101", "99"]
    empty = (await app_client.get("/api/v1/market/candles/BTC")).json()
    assert empty["exchange"] == "binance" and empty["candles"] == []


@pytest.mark.parametrize("params", [{"interval": "7m"}, {"exchange": "kraken"}, {"limit": 0}, {"limit": 100_000}])
async def test_bad_candle_parameters_are_a_422(app_client, params):
    response = await app_client.get("/api/v1/market/candles/BTC", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_candles_for_an_unknown_symbol_are_a_404(app_client):
    response = await app_client.get("/api/v1/market/candles/NOPE")
    assert response.status_code == 404 and "NOPE/USDT" in response.json()["error"]["message"]


async def test_fear_greed_has_the_current_reading_and_history(app_client, cache, db):
    today = datetime.fromtimestamp(int(time.time()) // 86400 * 86400, UTC)
    await FearGreedSink(cache, db)([FearGreedReading(30 + n, "Fear", today - timedelta(days=n)) for n in range(5)])
    body = (await app_client.get("/api/v1/market/fear-greed", params={"limit": 3})).json()
    assert body["current"] == {"value": 30, "classification": "Fear", "as_of": today.isoformat().replace("+00:00", "Z")}
    assert [r["value"] for r in body["history"]] == [30, 31, 32]


async def test_fear_greed_before_any_reading_is_empty_not_an_error(app_client):
    body = (await app_client.get("/api/v1/market/fear-greed")).json()
    assert body == {"current": None, "history": []}


async def test_the_service_contract_the_chat_relies_on(app_client, seeded):
    market = app_client.app.state.runtime.services.market
    prices = await market.consolidated(["BTC", "not a symbol", "SOL/USDT"])
    assert [p.symbol for p in prices] == ["BTC/USDT"]
    assert set(prices[0].exchanges) == {"binance", "gateio"}
    everything = await market.consolidated()
    assert [p.symbol for p in everything] == ["BTC/USDT", "ETH/USDT"]
    assert await market.fear_greed() is None
