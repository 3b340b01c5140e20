"""What the API and the chat read: market state from the cache (Valkey, or the
in-process cache in the embedded default) and history from PostgreSQL. Never from the
exchanges: only the ingestor talks to them.

The one exception is a symbol's first request: with live data on, a listed symbol that
has no ticker yet is answered from a REST snapshot (`sage.market.snapshot`) while the
ingestor subscribes to it, and every symbol named in a request is recorded in the demand
set (`sage.market.demand`) that decides what the ingestor subscribes to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import UTC, datetime

from sage.errors import NotFound, Unavailable
from sage.market.catalog import SymbolCatalog
from sage.market.consolidate import consolidate
from sage.market.demand import DemandSet
from sage.market.history import (
    DB_ERRORS,
    INTERVALS,
    fear_greed_history,
    fear_greed_key,
    query_candles,
    stop_if_cancelled,
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
    ticker_to_json,
)
from sage.market.pipeline import ticker_key, ticks_channel
from sage.market.snapshot import SnapshotFetcher
from sage.market.stream import FrameSink, TickerStreamHub, ticker_frame
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
        catalog: SymbolCatalog | None = None,
        demand: DemandSet | None = None,
        snapshots: SnapshotFetcher | None = None,
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
        self.catalog = catalog or SymbolCatalog(db, configured=self.symbols, exchanges=self.exchanges)
        self.demand_set = demand
        self.snapshots = snapshots
        self._openings: dict[tuple[str, ...] | None, asyncio.Future[bytes]] = {}
        self.hub = TickerStreamHub(
            cache,
            ticks_channel(cache),
            metrics,
            flush_interval=settings.market_stream_flush_seconds,
            keepalive=settings.sse_keepalive_seconds,
        )

    # -- symbols ------------------------------------------------------------------------------
    def resolve_symbol(self, raw: str) -> str:
        """ "btc_usdt" -> "BTC/USDT"; NotFound naming the input when it is not a symbol."""
        try:
            return parse_symbol(raw)
        except SymbolError:
            raise NotFound(f"Unknown symbol {raw!r}", details={"symbol": raw}) from None

    def require_listed(self, raw: str) -> str:
        """ "link" -> "LINK/USDT" when the catalog lists it; NotFound (404) naming it otherwise."""
        return self.catalog.require(raw)

    async def demand(self, symbols: Sequence[str]) -> None:
        """Record that users want these symbols live (viewed, held, alerted on, asked about).
        The configured symbols are always live and not recorded; unlisted ones are ignored."""
        if self.demand_set is None:
            return
        wanted = [s for s in self._normalize(symbols) if s not in self.symbols and self.catalog.is_listed(s)]
        if wanted:
            await self.demand_set.touch(wanted)

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
        Naming symbols records demand for them; a listed one without data yet is fetched
        from the exchanges' REST tickers when snapshots are on (live data).
        Raises Unavailable (sage.errors) when the cache cannot be reached."""
        by_symbol = await self.tickers(symbols)
        if symbols is not None:
            await self.demand(symbols)
            if self.snapshots is not None:
                await self._fill_from_snapshots(symbols, by_symbol)
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

    async def _fill_from_snapshots(self, symbols: Sequence[str], by_symbol: dict[str, dict[str, Ticker]]) -> None:
        assert self.snapshots is not None
        missing = [s for s in self._normalize(symbols) if s not in by_symbol and self.catalog.is_listed(s)]
        for symbol in missing[:10]:  # a request names a few symbols; never a REST storm
            exchanges = [e for e in self.catalog.exchanges_for(symbol) if e in self.exchanges]
            for ticker in await self.snapshots.fill(symbol, exchanges):
                by_symbol.setdefault(symbol, {})[ticker.exchange] = ticker

    def is_known(self, symbol: str) -> bool:
        """Listed in the catalog (the configured symbols always are)."""
        return self.catalog.is_listed(symbol)

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
            return await query_candles(self.db, exchange=exchange, symbol=symbol, interval=interval, limit=limit)
        except DB_ERRORS:
            raise Unavailable("Market history is temporarily unavailable", retry_after=5) from None

    # -- live stream ------------------------------------------------------------------------------
    def stream(self, sink: FrameSink, symbols: Sequence[str] | None = None) -> AbstractAsyncContextManager[None]:
        """Live ticker updates for `symbols` (None: all), pushed into `sink` as SSE frames
        (coalesced per flush, see `sage.market.stream`). The symbols stay in the demand set
        while the stream is open, so the ingestor keeps them live."""
        return self._stream(sink, self._normalize(symbols) if symbols else None)

    @asynccontextmanager
    async def _stream(self, sink: FrameSink, symbols: list[str] | None) -> AsyncIterator[None]:
        async with self.hub.subscribe(sink, frozenset(symbols) if symbols else None):
            keeper = asyncio.create_task(self._keep_demanded(symbols)) if symbols else None
            try:
                yield
            finally:
                if keeper is not None:
                    keeper.cancel()
                    with suppress(asyncio.CancelledError):
                        await keeper

    async def stream_opening(self, symbols: Sequence[str] | None = None) -> bytes:
        """The current tickers as SSE frames: what a new stream starts with (empty while
        Valkey is away; updates follow when it is back). Streams opening together with the
        same symbols (every client reconnecting after a deploy) share one read and encoding."""
        key = tuple(self._normalize(symbols)) if symbols else None
        pending = self._openings.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._read_opening(symbols))
            self._openings[key] = pending

            def forget(done: asyncio.Future[bytes]) -> None:
                if self._openings.get(key) is done:
                    del self._openings[key]

            pending.add_done_callback(forget)
        return await asyncio.shield(pending)

    async def _read_opening(self, symbols: Sequence[str] | None) -> bytes:
        try:
            current = await self.tickers(symbols)
        except Unavailable:
            return b""
        return b"".join(ticker_frame(ticker_to_json(t)) for by in current.values() for t in by.values())

    async def _keep_demanded(self, symbols: list[str]) -> None:
        interval = max(1.0, self.settings.demand_ttl_seconds / 3)
        while True:
            await self.demand(symbols)
            stop_if_cancelled()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        await self.hub.close()
