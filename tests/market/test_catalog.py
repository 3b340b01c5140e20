"""The symbol catalog: the exchanges' market lists over REST (the local fakes), stored in
PostgreSQL, refreshed without ever being emptied, and searched in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sage.errors import NotFound
from sage.market.catalog import CatalogEntry, SymbolCatalog, load_entries
from sage.market.catalog_refresh import CatalogRefresher, seed_catalog
from sage.market.catalog_sources import load_seed, parse_binance_exchange_info, parse_gateio_currency_pairs
from sage.market.rest import ExchangeApis, build_exchange_apis
from tests.market.fakes_rest import FakeBinanceRest, FakeGateioRest, Market

EXCHANGES = ("binance", "gateio")


@pytest.fixture
async def apis(binance_rest, gateio_rest, cache, metrics) -> AsyncIterator[ExchangeApis]:
    built = build_exchange_apis(
        binance_url=binance_rest.url,
        gateio_url=gateio_rest.url,
        cache=cache,
        metrics=metrics,
        timeout=5.0,
        binance_weight_per_minute=3000,
        gateio_per_second=10.0,
        max_wait=5.0,
    )
    yield built
    await built.close()


def refresher(db, apis, metrics) -> CatalogRefresher:
    return CatalogRefresher(db, apis, metrics, interval=86_400)


def test_binance_pairs_that_are_not_trading_are_left_out_and_sizes_come_from_the_filters():
    body = {
        "symbols": [
            {
                "symbol": "LINKUSDT",
                "status": "TRADING",
                "baseAsset": "LINK",
                "quoteAsset": "USDT",
                "baseAssetPrecision": 8,
                "quoteAssetPrecision": 8,
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.00100000"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.01000000"},
                ],
            },
            {"symbol": "LUNAUSDT", "status": "BREAK", "baseAsset": "LUNA", "quoteAsset": "USDT", "filters": []},
            {"symbol": "odd", "status": "TRADING", "baseAsset": "bad asset", "quoteAsset": "USDT"},
        ]
    }
    [link] = parse_binance_exchange_info(body)
    assert (link.symbol, link.exchange_symbol, link.tick_size, link.lot_size) == (
        "LINK/USDT",
        "LINKUSDT",
        Decimal("0.001"),
        Decimal("0.01"),
    )


def test_gateio_pairs_that_are_not_tradable_are_left_out_and_precision_gives_the_sizes():
    body = [
        {"id": "LINK_USDT", "base": "LINK", "base_name": "Chainlink", "quote": "USDT", "trade_status": "tradable",
         "precision": 3, "amount_precision": 2},
        {"id": "OLD_USDT", "base": "OLD", "quote": "USDT", "trade_status": "untradable", "precision": 3},
    ]  # fmt: skip
    [link] = parse_gateio_currency_pairs(body)
    assert (link.symbol, link.name, link.tick_size, link.lot_size) == (
        "LINK/USDT",
        "Chainlink",
        Decimal("0.001"),
        Decimal("0.01"),
    )


async def test_a_refresh_stores_both_exchanges_lists_and_which_exchange_lists_each_pair(
    db, apis, metrics, binance_rest: FakeBinanceRest, gateio_rest: FakeGateioRest
):
    binance_rest.markets.append(Market("BNB", "USDT", "600.1"))  # on Binance only
    results = await refresher(db, apis, metrics).refresh_once()
    assert results == {"binance": 7, "gateio": 6}
    entries = {e.symbol: e for e in await load_entries(db)}
    assert entries["LINK/USDT"].exchanges == EXCHANGES
    assert entries["LINK/USDT"].name == "Chainlink"  # Gate.io names assets; Binance does not
    assert entries["BNB/USDT"].exchanges == ("binance",)
    assert binance_rest.count("/api/v3/exchangeInfo") == 1
    assert gateio_rest.count("/api/v4/spot/currency_pairs") == 1


async def test_a_failed_refresh_keeps_the_stored_catalog(db, apis, metrics, binance_rest, gateio_rest):
    refresh = refresher(db, apis, metrics)
    await refresh.refresh_once()
    binance_rest.fail_next = [500]
    gateio_rest.markets.clear()  # an empty answer is a broken answer, not "everything delisted"
    results = await refresh.refresh_once()
    assert isinstance(results["binance"], str) and "500" in results["binance"]
    assert isinstance(results["gateio"], str) and "not applied" in results["gateio"]
    entries = {e.symbol: e for e in await load_entries(db)}
    assert len(entries) == 6 and entries["LINK/USDT"].exchanges == EXCHANGES
    assert metrics.value("CatalogRefreshFailures") == 2


async def test_a_successful_refresh_drops_delisted_pairs(db, apis, metrics, binance_rest):
    refresh = refresher(db, apis, metrics)
    await refresh.refresh_once()
    binance_rest.markets[:] = [m for m in binance_rest.markets if m.base != "DOT"]
    await refresh.refresh_once()
    entries = {e.symbol: e for e in await load_entries(db)}
    assert entries["DOT/USDT"].exchanges == ("gateio",)


async def test_the_shipped_seed_fills_an_empty_catalog_for_offline_search(db):
    seeded = await seed_catalog(db)
    assert seeded["binance"] >= 300 and seeded["gateio"] >= 150
    catalog = SymbolCatalog(db, configured=["BTC/USDT"], exchanges=EXCHANGES)
    await catalog.reload()
    assert [e.symbol for e in catalog.search("chainlink", limit=1)] == ["LINK/USDT"]


async def test_the_seed_never_replaces_a_catalog_read_from_the_exchanges(db, apis, metrics):
    await refresher(db, apis, metrics).refresh_once()
    assert await seed_catalog(db) == {"binance": 0, "gateio": 0}
    assert len(await load_entries(db)) == 6


async def test_configured_symbols_are_listed_even_before_any_catalog_exists(db):
    catalog = SymbolCatalog(db, configured=["BTC/USDT", "FOO/USDT"], exchanges=EXCHANGES)
    await catalog.reload()
    assert catalog.require("foo") == "FOO/USDT"
    with pytest.raises(NotFound, match="LINK/USDT"):
        catalog.require("link")


# -- search (pure, over an installed index) -------------------------------------------------------


def make_catalog(*rows: tuple[str, str | None, tuple[str, ...]]) -> SymbolCatalog:
    catalog = SymbolCatalog(None, configured=[], exchanges=EXCHANGES)  # type: ignore[arg-type]
    catalog._install(
        CatalogEntry(symbol, *symbol.split("/"), name, exchanges, False) for symbol, name, exchanges in rows
    )
    return catalog


SAMPLE = make_catalog(
    ("LINK/USDT", "Chainlink", EXCHANGES),
    ("LINK/BTC", "Chainlink", ("binance",)),
    ("LINK/EUR", None, ("binance",)),
    ("BLINK/USDT", None, ("gateio",)),
    ("LINKA/USDT", "Linka", ("gateio",)),
    ("SOL/USDT", "Solana", EXCHANGES),
    ("ETH/LINK", None, ("gateio",)),
)


def test_an_exact_base_comes_first_then_prefixes_then_substrings():
    found = [e.symbol for e in SAMPLE.search("link")]
    assert found[:3] == ["LINK/USDT", "LINK/BTC", "LINK/EUR"]
    assert found.index("LINKA/USDT") < found.index("BLINK/USDT")
    assert found[-1] == "ETH/LINK"  # quoted in LINK: last


def test_search_by_name_quote_filter_and_slash_form():
    assert [e.symbol for e in SAMPLE.search("sola")] == ["SOL/USDT"]
    assert [e.symbol for e in SAMPLE.search("link", quote="btc")] == ["LINK/BTC"]
    assert [e.symbol for e in SAMPLE.search("link/us")] == ["LINK/USDT"]
    assert [e.symbol for e in SAMPLE.search("LINKUS")] == ["LINK/USDT"]
    assert len(SAMPLE.search("", limit=3)) == 3


@given(st.text(alphabet="ABCEHIKLNOSTU/", max_size=6))
def test_every_result_matches_the_query_and_none_repeats(query):
    found = SAMPLE.search(query, limit=100)
    assert len({e.symbol for e in found}) == len(found)
    text = query.upper().partition("/")[0]
    for e in found:
        assert text in e.base or text in (e.name or "").upper() or e.quote.startswith(text) or text in e.base + e.quote


def test_the_seed_file_parses_and_holds_the_default_symbols():
    seed = load_seed()
    symbols = {item.symbol for item in seed["binance"]}
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT", "DOGE/USDT"} <= symbols
