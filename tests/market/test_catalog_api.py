"""The catalog and on-demand prices through the API: an API process with live data on
(its ingestor runs elsewhere), the exchanges' REST APIs played by the local fakes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from sage.chat.providers.base import ToolCall
from sage.chat.tools.base import ToolCaller
from sage.market.catalog_refresh import CatalogRefresher
from sage.market.rest import build_exchange_apis
from tests.market.fakes import eventually
from tests.support.api import register_and_login


@pytest.fixture
async def stored_catalog(db, cache, metrics, binance_rest, gateio_rest):
    apis = build_exchange_apis(
        binance_url=binance_rest.url,
        gateio_url=gateio_rest.url,
        cache=cache,
        metrics=metrics,
        timeout=5.0,
        binance_weight_per_minute=3000,
        gateio_per_second=10.0,
    )
    try:
        await CatalogRefresher(db, apis, metrics, interval=86_400).refresh_once()
    finally:
        await apis.close()


@pytest.fixture
def settings(live_settings, stored_catalog):
    """Live data on, ingestion elsewhere (VALKEY_URL set): what a production API task runs."""
    return live_settings(ingest_in_process=False)


async def test_search_finds_pairs_by_base_and_says_which_exchanges_list_them(app_client):
    response = await app_client.get("/api/v1/market/symbols", params={"q": "li"})
    assert response.status_code == 200
    body = response.json()
    assert body["catalog_size"] == 6
    [link] = body["symbols"]
    assert link == {
        "symbol": "LINK/USDT",
        "base": "LINK",
        "quote": "USDT",
        "name": "Chainlink",
        "exchanges": ["binance", "gateio"],
        "always_on": False,
    }


async def test_search_by_quote_and_name(app_client):
    eth = (await app_client.get("/api/v1/market/symbols", params={"q": "eth"})).json()["symbols"]
    assert [s["symbol"] for s in eth] == ["ETH/USDT", "ETH/BTC"]
    assert eth[0]["always_on"] is True
    btc_quoted = (await app_client.get("/api/v1/market/symbols", params={"q": "eth", "quote": "btc"})).json()
    assert [s["symbol"] for s in btc_quoted["symbols"]] == ["ETH/BTC"]
    named = (await app_client.get("/api/v1/market/symbols", params={"q": "polka"})).json()["symbols"]
    assert [s["symbol"] for s in named] == ["DOT/USDT"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"q": "x" * 42}])
async def test_bad_search_parameters_are_a_422(app_client, params):
    response = await app_client.get("/api/v1/market/symbols", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_an_unlisted_symbol_is_a_404_naming_it_on_every_market_route(app_client):
    for path in ("/api/v1/market/tickers/NOPE", "/api/v1/market/candles/NOPE"):
        response = await app_client.get(path)
        assert response.status_code == 404, path
        assert "NOPE/USDT" in response.json()["error"]["message"]
    listing = await app_client.get("/api/v1/market/tickers", params={"symbols": "BTC,NOPE"})
    assert listing.status_code == 404 and "NOPE/USDT" in listing.json()["error"]["message"]


async def test_a_first_request_is_answered_from_a_rest_snapshot_and_records_demand(
    app_client, cache, binance_rest, gateio_rest
):
    response = await app_client.get("/api/v1/market/tickers/link")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["symbol"] == "LINK/USDT" and body["price"] == "14.2100"
    assert set(body["exchanges"]) == {"binance", "gateio"}
    assert binance_rest.requests[-1] == ("/api/v3/ticker/24hr", {"symbol": "LINKUSDT"})
    assert gateio_rest.requests[-1] == ("/api/v4/spot/tickers", {"currency_pair": "LINK_USDT"})
    demanded = await cache.backend.zrange_desc(cache.key("market", "demand"), 0, 10)
    assert [m for m, _ in demanded] == ["LINK/USDT"]
    # the snapshot is now the cached ticker: a second request costs no REST call
    again = await app_client.get("/api/v1/market/tickers/LINKUSDT")
    assert again.json()["price"] == "14.2100"
    assert binance_rest.count("/api/v3/ticker/24hr") == 1


async def test_a_symbol_with_a_live_ticker_costs_no_snapshot(app_client, cache, metrics):
    from tests.market.helpers import ticker
    from tests.market.test_api import seed

    await seed(cache, metrics, ticker("ADA/USDT", "0.7500"))
    body = (await app_client.get("/api/v1/market/tickers/ADA")).json()
    assert body["price"] == "0.7500" and list(body["exchanges"]) == ["binance"]


async def test_configured_symbols_are_not_recorded_as_demand(app_client, cache):
    await app_client.get("/api/v1/market/tickers", params={"symbols": "BTC,ETH"})
    assert await cache.backend.zrange_desc(cache.key("market", "demand"), 0, 10) == []


async def test_when_the_exchanges_refuse_the_snapshot_a_listed_symbol_is_unavailable_not_unknown(
    app_client, binance_rest, gateio_rest
):
    binance_rest.fail_next = [503]
    gateio_rest.fail_next = [502]
    response = await app_client.get("/api/v1/market/tickers/DOT")
    assert response.status_code == 503
    assert "DOT/USDT" in response.json()["error"]["message"]
    assert response.headers["retry-after"]


async def test_other_domains_get_prices_for_listed_symbols_through_the_reader(app_client):
    market = app_client.app.state.runtime.services.market
    prices = await market.consolidated(["LINK", "NOPE"])
    assert [p.symbol for p in prices] == ["LINK/USDT"]
    catalog = app_client.app.state.runtime.services.catalog
    assert catalog.is_listed("LINK/USDT") and not catalog.is_listed("NOPE/USDT")


class _NoReader:
    reason: str | None = None

    def push(self, frame: bytes | None) -> bool:
        return True


async def test_symbols_streamed_stay_demanded_while_the_stream_is_open(app_client, cache):
    market = app_client.app.state.runtime.services.market
    key = cache.key("market", "demand")
    async with market.stream(_NoReader(), ["link", "BTC"]):
        demanded = await eventually(lambda: cache.backend.zrange_desc(key, 0, 10))
        assert [m for m, _ in demanded] == ["LINK/USDT"]  # configured BTC is always live: not recorded


# --- every domain that takes a symbol in a body checks it against the same catalog ----------
async def _user(app_client) -> dict[str, str]:
    login = await register_and_login(app_client)
    return {"Authorization": f"Bearer {login['access_token']}"}


async def test_a_portfolio_records_a_trade_in_a_listed_pair_outside_the_configured_symbols(app_client):
    headers = await _user(app_client)
    portfolio = (await app_client.post("/api/v1/portfolios", json={"name": "alts"}, headers=headers)).json()
    response = await app_client.post(
        f"/api/v1/portfolios/{portfolio['id']}/transactions",
        json={"kind": "buy", "symbol": "link", "quantity": "10", "price": "14.5"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["symbol"] == "LINK/USDT"


async def test_a_portfolio_refuses_a_pair_no_exchange_lists_with_a_422_naming_it(app_client):
    headers = await _user(app_client)
    portfolio = (await app_client.post("/api/v1/portfolios", json={"name": "alts"}, headers=headers)).json()
    response = await app_client.post(
        f"/api/v1/portfolios/{portfolio['id']}/transactions",
        json={"kind": "buy", "symbol": "NOPE/USDT", "quantity": "1", "price": "1"},
        headers=headers,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert "NOPE/USDT" in error["message"]
    assert [d["field"] for d in error["details"]] == ["symbol"]


async def test_an_alert_watches_a_listed_pair_and_refuses_an_unlisted_one(app_client):
    headers = await _user(app_client)
    listed = await app_client.post(
        "/api/v1/alerts", json={"kind": "price_above", "symbol": "LINKUSDT", "threshold": "1000"}, headers=headers
    )
    assert listed.status_code == 201, listed.text
    assert listed.json()["symbol"] == "LINK/USDT"
    unlisted = await app_client.post(
        "/api/v1/alerts", json={"kind": "price_above", "symbol": "NOPE/USDT", "threshold": "1"}, headers=headers
    )
    assert unlisted.status_code == 422
    error = unlisted.json()["error"]
    assert "NOPE/USDT" in error["message"]
    assert [d["field"] for d in error["details"]] == ["symbol"]


async def test_the_chat_price_tool_prices_a_listed_pair_and_names_an_unlisted_one(app_client):
    tools = app_client.app.state.runtime.services.chat.tools
    outcome = await tools.run(
        ToolCall("t1", "get_price", '{"symbols": ["LINK", "NOPE"]}'), ToolCaller(uuid.uuid4(), datetime.now(UTC))
    )
    assert not outcome.result.is_error, outcome.result
    assert [row["symbol"] for row in outcome.data["prices"]] == ["LINK/USDT"]
    assert outcome.data["unknown"] == ["NOPE"]


async def test_the_chat_candle_tool_refuses_an_unlisted_pair_naming_it(app_client):
    tools = app_client.app.state.runtime.services.chat.tools
    outcome = await tools.run(
        ToolCall("t1", "get_candles", '{"symbol": "NOPE", "interval": "1h", "start": "2026-01-01T00:00:00Z"}'),
        ToolCaller(uuid.uuid4(), datetime.now(UTC)),
    )
    assert outcome.result.is_error
    assert "NOPE/USDT" in outcome.summary and "lists it" in outcome.summary
