"""Market data: tickers (consolidated and per exchange), candles, Fear & Greed, and a
live Server-Sent Events stream. Public: no login needed for market data.

Read from the cache (Valkey, or the in-process cache) and PostgreSQL only; this
process never talks to an exchange. Decimals are JSON strings so no digit is lost.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from sage.api.deps import CatalogDep, MarketDep, SettingsDep
from sage.api.openapi import error_responses
from sage.api.schemas import SYMBOL, SYMBOL_PATTERN
from sage.api.sse import EventStreamResponse, FrameWriter, StreamDrain, stream_drain
from sage.errors import InvalidInput, Unavailable
from sage.market.consolidate import is_stale
from sage.market.models import ConsolidatedPrice, FearGreedReading, Ticker
from sage.market.service import MarketService
from sage.runtime import Runtime
from sage.settings import Settings

router = APIRouter(prefix="/market", tags=["market"])

SLOW_CONSUMER = b'event: error\ndata: {"code":"slow_consumer","message":"too far behind; reconnect"}\n\n'

Exchange = Literal["binance", "gateio"]
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d", "1w"]


class ExchangeTickerOut(BaseModel):
    exchange: str
    last: Decimal
    bid: Decimal
    ask: Decimal
    change_pct: Decimal = Field(description="24 h change in percent")
    high: Decimal
    low: Decimal
    base_volume: Decimal
    quote_volume: Decimal
    event_time: datetime
    received_at: datetime
    age_seconds: float
    stale: bool


class TickerOut(BaseModel):
    symbol: str
    price: Decimal = Field(description="median of the fresh exchanges' last prices")
    change_pct_24h: Decimal | None
    as_of: datetime
    age_seconds: float
    stale: bool = Field(description="no exchange has reported within SAGE_TICKER_STALE_SECONDS")
    diverged: bool = Field(description="exchanges disagree by more than SAGE_DIVERGENCE_PERCENT")
    spread_pct: Decimal
    exchanges: dict[str, ExchangeTickerOut]


class TickersOut(BaseModel):
    source: str = Field(description="live, replay (recorded session) or off")
    generated_at: datetime
    stale_after_seconds: float
    divergence_percent: float
    tickers: list[TickerOut]
    missing: list[str] = Field(description="requested symbols with no data yet")


class FearGreedOut(BaseModel):
    value: int
    classification: str
    as_of: datetime


class FearGreedResponse(BaseModel):
    current: FearGreedOut | None
    history: list[FearGreedOut]


class CandleOut(BaseModel):
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Field(description="base volume, estimated from the rolling 24 h volume")
    ticks: int


class CandlesOut(BaseModel):
    symbol: str
    exchange: str
    interval: str
    candles: list[CandleOut]


def _exchange_out(ticker: Ticker, now: datetime, stale_after: float) -> ExchangeTickerOut:
    return ExchangeTickerOut(
        exchange=ticker.exchange,
        last=ticker.last,
        bid=ticker.bid,
        ask=ticker.ask,
        change_pct=ticker.change_pct,
        high=ticker.high,
        low=ticker.low,
        base_volume=ticker.base_volume,
        quote_volume=ticker.quote_volume,
        event_time=ticker.event_time,
        received_at=ticker.received_at,
        age_seconds=round(ticker.age_seconds(now), 3),
        stale=is_stale(ticker, now, stale_after),
    )


def _ticker_out(price: ConsolidatedPrice, now: datetime, stale_after: float) -> TickerOut:
    return TickerOut(
        symbol=price.symbol,
        price=price.price,
        change_pct_24h=price.change_pct_24h,
        as_of=price.as_of,
        age_seconds=round(max(0.0, (now - price.as_of).total_seconds()), 3),
        stale=price.stale,
        diverged=price.diverged,
        spread_pct=price.spread_pct.quantize(Decimal("0.0001")),
        exchanges={name: _exchange_out(t, now, stale_after) for name, t in price.exchanges.items()},
    )


MAX_SYMBOLS_PER_REQUEST = 100
SYMBOLS_PATTERN = f"^{SYMBOL}(?:,{SYMBOL}){{0,{MAX_SYMBOLS_PER_REQUEST - 1}}}$"
_ONE_SYMBOL = re.compile(SYMBOL_PATTERN)


def _invalid_symbols(message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"field": "symbols", "in": "query", "message": message}])


def _symbols_param(market: MarketDep, raw: str | None) -> list[str] | None:
    """The `symbols` list, checked here (not by the schema's pattern, which documents the same
    rule) so a refusal names the limit or the symbol at fault; each must be listed (404 naming the
    first that is not). Linear in the input."""
    if raw is None:
        return None
    parts = raw.split(",")
    if len(parts) > MAX_SYMBOLS_PER_REQUEST:
        raise _invalid_symbols(f"At most {MAX_SYMBOLS_PER_REQUEST} symbols per request ({len(parts)} given)")
    for part in parts:
        if not _ONE_SYMBOL.fullmatch(part):
            raise _invalid_symbols(f"{part[:50]!r} is not a symbol (BTC, BTCUSDT, BTC/USDT, btc_usdt)")
    return [market.require_listed(part) for part in parts]


class SymbolOut(BaseModel):
    symbol: str
    base: str
    quote: str
    name: str | None
    exchanges: list[str] = Field(description="exchanges that list the pair")
    always_on: bool = Field(description="one of SAGE_SYMBOLS: ingested all the time; others go live on demand")


class SymbolsOut(BaseModel):
    query: str
    quote: str | None
    catalog_size: int
    symbols: list[SymbolOut]


SymbolsQuery = Annotated[
    str | None,
    Query(
        description=f"comma-separated symbols (BTC, BTCUSDT, BTC/USDT, btc_usdt), at most {MAX_SYMBOLS_PER_REQUEST}; "
        "default: all configured",
        json_schema_extra={"pattern": SYMBOLS_PATTERN},
    ),
]
SymbolPath = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="BTC, BTCUSDT, BTC/USDT, btc_usdt or BTC-USDT")]


@router.get(
    "/tickers",
    response_model=TickersOut,
    summary="Latest prices, consolidated and per exchange",
    responses=error_responses(404),
)
async def tickers(market: MarketDep, symbols: SymbolsQuery = None) -> TickersOut:
    wanted = _symbols_param(market, symbols)
    prices = await market.consolidated(wanted)
    now = market.clock()
    found = {p.symbol for p in prices}
    return TickersOut(
        source=market.source,
        generated_at=now,
        stale_after_seconds=market.stale_after,
        divergence_percent=market.divergence_percent,
        tickers=[_ticker_out(p, now, market.stale_after) for p in prices],
        missing=[s for s in (wanted or market.symbols) if s not in found],
    )


@router.get("/symbols", response_model=SymbolsOut, summary="Search the symbol catalog")
async def symbols(
    catalog: CatalogDep,
    q: Annotated[str, Query(max_length=41, description="base, quote or name; prefix matches first")] = "",
    quote: Annotated[str | None, Query(max_length=20, description="only pairs in this quote asset")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SymbolsOut:
    found = catalog.search(q, quote=quote, limit=limit)
    return SymbolsOut(
        query=q,
        quote=quote.upper() if quote else None,
        catalog_size=len(catalog),
        symbols=[
            SymbolOut(
                symbol=e.symbol,
                base=e.base,
                quote=e.quote,
                name=e.name,
                exchanges=list(e.exchanges),
                always_on=e.always_on,
            )
            for e in found
        ],
    )


@router.get("/tickers/{symbol:path}", response_model=TickerOut, summary="One symbol's price")
async def ticker(market: MarketDep, symbol: SymbolPath) -> TickerOut:
    """404 naming the symbol when no exchange lists it; 503 with Retry-After when it is
    listed but has no price yet (live: the snapshot failed and the subscription is
    starting; replay: the recording does not have it)."""
    resolved = market.require_listed(symbol)
    price = await market.consolidated_one(resolved)
    if price is None:
        detail = {"symbol": resolved, "source": market.source}
        if market.source == "replay" and resolved not in market.symbols:
            raise Unavailable(
                f"No market data for {resolved} yet: the recorded session replayed offline has only "
                f"{', '.join(market.symbols)}",
                retry_after=60,
                details=detail,
            )
        raise Unavailable(f"No market data for {resolved} yet", retry_after=5, details=detail)
    return _ticker_out(price, market.clock(), market.stale_after)


@router.get("/candles/{symbol:path}", response_model=CandlesOut, summary="OHLCV candles")
async def candles(
    market: MarketDep,
    symbol: SymbolPath,
    exchange: Annotated[Exchange | None, Query(description="default: binance")] = None,
    interval: Interval = "1m",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CandlesOut:
    resolved = market.require_listed(symbol)
    await market.demand([resolved])
    chosen = exchange or market.exchanges[0]
    bars = await market.candles(resolved, exchange=chosen, interval=interval, limit=limit)
    return CandlesOut(
        symbol=resolved,
        exchange=chosen,
        interval=interval,
        candles=[
            CandleOut(start=c.start, open=c.open, high=c.high, low=c.low, close=c.close, volume=c.volume, ticks=c.ticks)
            for c in bars
        ],
    )


def _fng_out(reading: FearGreedReading) -> FearGreedOut:
    return FearGreedOut(value=reading.value, classification=reading.classification, as_of=reading.as_of)


@router.get("/fear-greed", response_model=FearGreedResponse, summary="Crypto Fear & Greed index")
async def fear_greed(market: MarketDep, limit: Annotated[int, Query(ge=1, le=365)] = 30) -> FearGreedResponse:
    current = await market.fear_greed()
    history = await market.fear_greed_history(limit)
    return FearGreedResponse(current=_fng_out(current) if current else None, history=[_fng_out(r) for r in history])


@router.get(
    "/stream",
    summary="Live ticker updates (Server-Sent Events)",
    response_class=EventStreamResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(404)},
)
async def stream(
    request: Request, settings: SettingsDep, market: MarketDep, symbols: SymbolsQuery = None
) -> EventStreamResponse:
    """`event: ticker` with one exchange's ticker as JSON (decimals as strings, times in
    epoch milliseconds): the current tickers first, then the updates.

    Updates are coalesced: every SAGE_MARKET_STREAM_FLUSH_SECONDS (0.25 s by default) the
    stream sends, for each (exchange, symbol) that changed since the last send, its latest
    ticker only, in one write of several events. A price that moved twice within that
    interval arrives once, at its newest value; no symbol's latest state is skipped.

    A comment line every SAGE_SSE_KEEPALIVE_SECONDS keeps proxies from closing an idle
    stream. A client that stops reading until SAGE_MARKET_STREAM_QUEUE_SIZE sends are
    waiting for it gets `event: error` (`slow_consumer`) and is disconnected."""
    wanted = _symbols_param(market, symbols)
    return _stream_response(market, settings, stream_drain(request), wanted)


def _stream_response(
    market: MarketService, settings: Settings, drain: StreamDrain | None, wanted: list[str] | None
) -> EventStreamResponse:
    async def feed(writer: FrameWriter) -> None:
        async with market.stream(writer, wanted):
            opening = await market.stream_opening(wanted)
            if opening:
                await writer.write(opening)
            writer.release()
            await writer.wait()

    # At shutdown the stream just ends: the browser's EventSource reconnects (after `retry:`)
    # and the load balancer sends it to another task.
    return EventStreamResponse(
        feed=feed,
        backlog=settings.market_stream_queue_size,
        overflow=SLOW_CONSUMER,
        drain=drain,
    )


STREAM_PATH = "/api/v1/market/stream"
_STREAM_ROUTE = SimpleNamespace(path=STREAM_PATH)  # what the request metrics group it under


class MarketStreamFastPath:
    """`GET /api/v1/market/stream` answered just inside the app's middleware (request id, CORS,
    body limit, request metrics and log all still run, once per connection), without FastAPI's
    routing, dependency resolution and exception layers: each of those keeps frames and exit
    stacks alive for as long as a stream is open, ~10 KB per client at 10,000 clients. Same
    parameters, same checks (`_symbols_param`), same response as the route; anything it does
    not answer itself (a refused `symbols`, another method, the app still starting) goes on to
    the route, which gives the usual answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STREAM_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        runtime: Runtime | None = getattr(state, "runtime", None)
        try:
            if runtime is None:
                raise LookupError("not started")
            values = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True).get("symbols")
            wanted = _symbols_param(runtime.services.market, values[-1] if values else None)
        except Exception:
            await self.app(scope, receive, send)  # the route answers it (a 422 or 404 naming the field)
            return
        scope["route"] = _STREAM_ROUTE
        drain = getattr(state, "stream_drain", None)
        response = _stream_response(
            runtime.services.market, runtime.settings, drain if isinstance(drain, StreamDrain) else None, wanted
        )
        await response(scope, receive, send)
