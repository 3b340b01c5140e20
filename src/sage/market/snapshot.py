"""First-request prices: a symbol nobody asked about before has no live ticker yet, so its
first request is answered from the exchanges' REST 24 h tickers while the ingestor
subscribes to it (Binance `GET /api/v3/ticker/24hr?symbol=` weight 2; Gate.io
`GET /api/v4/spot/tickers?currency_pair=`).

A snapshot is written like a live ticker, but only where none exists yet (SET NX), so it
never overwrites a newer streamed price. Concurrent requests for one symbol share one
fetch per process, and the shared REST budget bounds all processes together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sage.market.feeds import gateio
from sage.market.feeds.base import MalformedMessage, build_ticker
from sage.market.feeds.binance import exchange_symbol
from sage.market.feeds.gateio import currency_pair
from sage.market.models import Ticker, ticker_to_json
from sage.market.pipeline import ticker_key
from sage.market.rest import ExchangeApis, RestError
from sage.singleflight import SingleFlight
from sage.store.cache import Cache, CacheUnavailable

log = logging.getLogger(__name__)

TICKER_24HR_WEIGHT = 2  # Binance, one symbol


def parse_binance_24hr(symbol: str, body: Any, received_at: datetime) -> Ticker:
    if not isinstance(body, dict):
        raise MalformedMessage("ticker/24hr is not an object")
    try:
        raw = tuple(
            body[k]
            for k in (
                "lastPrice",
                "bidPrice",
                "askPrice",
                "priceChangePercent",
                "highPrice",
                "lowPrice",
                "volume",
                "quoteVolume",
            )
        )
        close_ms = body["closeTime"]
    except KeyError as exc:
        raise MalformedMessage(f"ticker/24hr without {exc.args[0]!r}") from None
    if type(close_ms) is not int or close_ms <= 0:
        raise MalformedMessage("ticker/24hr without a valid closeTime")
    return build_ticker(("binance", symbol), raw, close_ms, received_at)


def parse_gateio_tickers(symbol: str, body: Any, received_at: datetime) -> Ticker:
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        raise MalformedMessage("spot/tickers is not a non-empty list")
    r = body[0]
    try:
        raw = tuple(r[k] for k in gateio.TICKER_FIELDS)
    except KeyError as exc:
        raise MalformedMessage(f"spot/tickers entry without {exc.args[0]!r}") from None
    # Gate's REST ticker carries no time: it is as of when we received it.
    return build_ticker(("gateio", symbol), raw, int(received_at.timestamp() * 1000), received_at)


class SnapshotFetcher:
    def __init__(self, apis: ExchangeApis, cache: Cache) -> None:
        self.apis = apis
        self.cache = cache
        self._flights: SingleFlight[Ticker | None] = SingleFlight()
        self.fetched = 0

    async def fill(self, symbol: str, exchanges: Sequence[str]) -> list[Ticker]:
        """REST tickers for `symbol` on `exchanges`, stored where no live ticker exists;
        concurrent asks for the same (exchange, symbol) share one request."""
        results = await asyncio.gather(
            *(self._flights.run((exchange, symbol), partial(self._fetch, exchange, symbol)) for exchange in exchanges)
        )
        return [t for t in results if t is not None]

    async def _fetch(self, exchange: str, symbol: str) -> Ticker | None:
        try:
            if exchange == "binance":
                body = await self.apis.binance.get(
                    "/api/v3/ticker/24hr",
                    {"symbol": exchange_symbol(symbol)},
                    budget=self.apis.binance_budget,
                    cost=TICKER_24HR_WEIGHT,
                )
                ticker = parse_binance_24hr(symbol, body, datetime.now(UTC))
            else:
                body = await self.apis.gateio.get(
                    "/spot/tickers",
                    {"currency_pair": currency_pair(symbol)},
                    budget=self.apis.gateio_budget("spot/tickers"),
                    cost=1,
                )
                ticker = parse_gateio_tickers(symbol, body, datetime.now(UTC))
        except (RestError, MalformedMessage) as exc:
            log.info("snapshot unavailable", extra={"exchange": exchange, "symbol": symbol, "error": str(exc)[:200]})
            return None
        self.fetched += 1
        try:
            await self.cache.backend.set(
                ticker_key(self.cache, exchange, symbol), ticker_to_json(ticker), self.cache.ttl.market_price, nx=True
            )
        except CacheUnavailable as exc:
            self.cache.report_failure("market snapshot", exc)
        return ticker
