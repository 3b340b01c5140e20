"""What the API and the chat read: market state from the cache (Valkey, or the
in-process cache in the embedded default) and history from PostgreSQL. Never from the
exchanges: only the ingestor talks to them.

`runtime.services["market"]` is a `MarketService`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from sage.errors import NotFound, Unavailable
from sage.market.consolidate import consolidate
from sage.market.history import (
    DB_ERRORS,
    INTERVALS,
    fear_greed_history,
    fear_greed_key,
    query_candles,
)
from sage.market.models import (
    EXCHANGES,
    Candle,
    ConsolidatedPrice,
    FearGreedReading,
    Ticker,
    WireFormatError,
    fear_greed_from_wire,
    ticker_from_json,
)
from sage.market.pipeline import ticker_key, ticks_channel
from sage.market.stream import StreamClient, TickerStreamHub
from sage.market.symbols import SymbolError, parse_symbol
from sage.observability.metrics import Metrics
from sage.settings import Settings
from sage.store.cache import Cache, CacheUnavailable
from sage.store.db import Database

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class MarketService:
    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        db: Database,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = utcnow,
        exchanges: Sequence[str] = EXCHANGES,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.db = db
        self.metrics = metrics
        self.clock = clock
        self.exchanges = tuple(exchanges)
        self.symbols: list[str] = list(settings.symbols)
        self.source: str = settings.market_source.value
        self.stale_after = settings.ticker_stale_seconds
        self.divergence_percent = settings.divergence_percent
        self.hub = TickerStreamHub(cache, ticks_channel(cache), metrics, queue_size=settings.market_stream_queue_size)

    # -- symbols ------------------------------------------------------------------------------
    def resolve_symbol(self, raw: str) -> str:
        """ "btc_usdt" -> "BTC/USDT"; NotFound naming the input when it is not a symbol."""
        try:
            return parse_symbol(raw)
        except SymbolError:
            raise NotFound(f"Unknown symbol {raw!r}", details={"symbol": raw}) from None

    def _normalize(self, symbols: Sequence[str] | None) -> list[str]:
        if symbols is None:
            return list(self.symbols)
        out: dict[str, None] = {}  # ordered set: linear in the number asked, first spelling's order kept
        for raw in symbols:
            try:
                out[parse_symbol(raw)] = None
            except SymbolError:
                continue
        return list(out)

    # -- tickers --------------------------------------------------------------------------------
    async def tickers(self, symbols: Sequence[str] | None = None) -> dict[str, dict[str, Ticker]]:
        """Latest ticker per exchange for each symbol that has any (symbol -> exchange -> ticker)."""
        wanted = self._normalize(symbols)
        pairs = [(symbol, exchange) for symbol in wanted for exchange in self.exchanges]
        if not pairs:
            return {}
        try:
            raws = await self.cache.backend.get_many([ticker_key(self.cache, ex, sym) for sym, ex in pairs])
        except CacheUnavailable as exc:
            self.cache.report_failure("market tickers", exc)
            raise Unavailable("Market data is temporarily unavailable", retry_after=5) from None
        out: dict[str, dict[str, Ticker]] = {}
        for (symbol, exchange), raw in zip(pairs, raws, strict=True):
            if raw is None:
                continue
            try:
                ticker = ticker_from_json(raw)
            except WireFormatError:
                log.warning("unreadable cached ticker ignored", extra={"symbol": symbol, "exchange": exchange})
                continue
            out.setdefault(symbol, {})[exchange] = ticker
        return out

    async def consolidated(self, symbols: Sequence[str] | None = None) -> list[ConsolidatedPrice]:
        """Consolidated prices, in the order asked (None: the configured symbols).
        Symbols with no data on any exchange (or not symbols at all) are left out.
        Raises Unavailable (sage.errors) when the cache cannot be reached."""
        by_symbol = await self.tickers(symbols)
        now = self.clock()
        out = []
        for symbol in self._normalize(symbols):
            price = consolidate(
                symbol,
                by_symbol.get(symbol, {}),
                now=now,
                stale_after=self.stale_after,
                divergence_percent=self.divergence_percent,
            )
            if price is not None:
                out.append(price)
        return out

    async def consolidated_one(self, symbol: str) -> ConsolidatedPrice | None:
        found = await self.consolidated([symbol])
        return found[0] if found else None

    def is_known(self, symbol: str) -> bool:
        return symbol in self.symbols

    # -- fear & greed ---------------------------------------------------------------------------
    async def fear_greed(self) -> FearGreedReading | None:
        cached = await self.cache.get_json(fear_greed_key(self.cache))
        if cached is not None:
            try:
                return fear_greed_from_wire(cached)
            except WireFormatError:
                log.warning("unreadable cached fear & greed reading ignored")
        try:
            history = await fear_greed_history(self.db, 1)
        except DB_ERRORS as exc:
            log.warning("fear & greed history unavailable", extra={"error": type(exc).__name__})
            return None
        return history[0] if history else None

    async def fear_greed_history(self, limit: int = 30) -> list[FearGreedReading]:
        try:
            return await fear_greed_history(self.db, limit)
        except DB_ERRORS:
            raise Unavailable("Fear & Greed history is temporarily unavailable", retry_after=5) from None

    # -- candles -----------------------------------------------------------------------------------
    async def candles(self, symbol: str, *, exchange: str, interval: str = "1m", limit: int = 100) -> list[Candle]:
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        try:
            return await query_candles(
                self.db, exchange=exchange, symbol=symbol, interval=interval, limit=limit, now=self.clock()
            )
        except DB_ERRORS:
            raise Unavailable("Market history is temporarily unavailable", retry_after=5) from None

    # -- live stream ------------------------------------------------------------------------------
    def stream(self, symbols: Sequence[str] | None = None) -> AbstractAsyncContextManager[StreamClient]:
        """Live ticker updates (wire JSON) for `symbols` (None: all)."""
        wanted = frozenset(self._normalize(symbols)) if symbols else None
        return self.hub.subscribe(wanted)

    async def close(self) -> None:
        await self.hub.close()
