"""Candle history from the exchanges' REST APIs, so a symbol has charts the moment it is
first demanded and a restart leaves no hole.

Per symbol and exchange: 1m bars for the last 24 h, 1h bars for the last 90 days and 1d
bars for the last 2 years (Binance `GET /api/v3/klines`, weight 2 per page of up to 1000
bars; Gate.io `GET /api/v4/spot/candlesticks`, up to 1000 points per request). Only closed
bars are stored, upserted on (exchange, symbol, interval, start), so they merge with the
live minute bars without duplicates and a bar still in progress comes from live ticks.
1h and 1d resume from the newest stored bar; 1m is fetched whole (24 h is two pages), which
also fills the minutes missed while the ingestor was down.

The ingestor queues a symbol when it is first demanded and, on start, every configured
symbol (the gap after a restart); one worker drains the queue within the shared REST budgets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from sage.market.catalog import SymbolCatalog
from sage.market.feeds.binance import exchange_symbol
from sage.market.feeds.gateio import currency_pair
from sage.market.history import DB_ERRORS, NATIVE, stop_if_cancelled
from sage.market.models import Candle
from sage.market.rest import ExchangeApis, RestError, RestUnavailable
from sage.observability.metrics import Metrics
from sage.store.db import Database
from sage.store.market_tables import CandleRow

log = logging.getLogger(__name__)

PLAN: tuple[tuple[str, int], ...] = (("1m", 86_400), ("1h", 90 * 86_400), ("1d", 730 * 86_400))
PAGE = 1000  # bars per request, both exchanges' maximum
KLINES_WEIGHT = 2  # Binance klines, any limit up to 1000


class BackfillFormatError(ValueError):
    pass


def _bar(exchange: str, symbol: str, start_s: int, values: Sequence[Any]) -> Candle:
    try:
        o, h, lo, c, v = (Decimal(x) for x in values)
    except (InvalidOperation, TypeError, ValueError):
        raise BackfillFormatError(f"unreadable {exchange} candle for {symbol}") from None
    # ticks = 0: the bar came from the exchange, not from ticker updates seen live
    return Candle(exchange, symbol, datetime.fromtimestamp(start_s, UTC), o, h, lo, c, v, 0)


def parse_binance_klines(symbol: str, body: Any, *, now_ms: int) -> list[Candle]:
    """[[open time, open, high, low, close, volume, close time, ...], ...]; bars whose close
    time has not passed are still open and left out."""
    if not isinstance(body, list):
        raise BackfillFormatError("klines is not a list")
    out = []
    for row in body:
        if not isinstance(row, list) or len(row) < 7 or type(row[0]) is not int or type(row[6]) is not int:
            raise BackfillFormatError("malformed kline")
        if row[6] >= now_ms:
            continue
        out.append(_bar("binance", symbol, row[0] // 1000, row[1:6]))
    return out


def parse_gateio_candlesticks(symbol: str, body: Any, *, step: int, now_s: int) -> list[Candle]:
    """[[unix seconds, quote volume, close, high, low, open, base volume, closed], ...]."""
    if not isinstance(body, list):
        raise BackfillFormatError("candlesticks is not a list")
    out = []
    for row in body:
        if not isinstance(row, list) or len(row) < 7:
            raise BackfillFormatError("malformed candlestick")
        try:
            start = int(row[0])
        except (TypeError, ValueError):
            raise BackfillFormatError("candlestick without a time") from None
        closed = start + step <= now_s and (len(row) < 8 or row[7] == "true")
        if not closed:
            continue
        out.append(_bar("gateio", symbol, start, (row[5], row[3], row[4], row[2], row[6])))
    return out


def _upsert_bar() -> Any:
    stmt = insert(CandleRow)
    ex = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[CandleRow.exchange, CandleRow.symbol, CandleRow.interval, CandleRow.start],
        set_={
            "open": ex.open,
            "high": ex.high,
            "low": ex.low,
            "close": ex.close,
            "volume": ex.volume,
            "updated_at": func.now(),
        },
    )


_UPSERT_BAR = _upsert_bar()


async def save_bars(db: Database, interval: str, candles: Sequence[Candle]) -> int:
    """Upsert: a bar from the exchange is authoritative for its (closed) period."""
    if not candles:
        return 0
    rows = {
        (c.exchange, c.symbol, c.start): {
            "exchange": c.exchange,
            "symbol": c.symbol,
            "interval": interval,
            "start": c.start,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
            "ticks": c.ticks,
        }
        for c in candles
    }
    values = list(rows.values())
    async with db.session() as session:
        # executemany of one cached statement: compiling a 1000-row VALUES list each time
        # cost more than the database did.
        await session.execute(_UPSERT_BAR, values)
        await session.commit()
    return len(values)


async def newest_bar(db: Database, exchange: str, symbol: str, interval: str) -> datetime | None:
    async with db.session() as session:
        return (
            await session.execute(
                select(func.max(CandleRow.start)).where(
                    CandleRow.exchange == exchange, CandleRow.symbol == symbol, CandleRow.interval == interval
                )
            )
        ).scalar_one_or_none()


class CandleBackfill:
    def __init__(
        self,
        db: Database,
        apis: ExchangeApis,
        catalog: SymbolCatalog,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.apis = apis
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self.done: dict[str, int] = {}  # symbol -> bars stored by its last backfill
        self.failed: dict[str, str] = {}

    def request(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            if symbol not in self._queued:
                self._queued.add(symbol)
                self._queue.put_nowait(symbol)

    async def run(self) -> None:
        while True:
            stop_if_cancelled()
            symbol = await self._queue.get()
            try:
                self.done[symbol] = await self.backfill(symbol)
                self.failed.pop(symbol, None)
            except RestUnavailable as exc:
                stop_if_cancelled()
                # Out of budget or told to back off: try again after the wait.
                self.failed[symbol] = str(exc)
                stop_if_cancelled()
                await asyncio.sleep(min(exc.retry_after, 300.0))
                self._queue.put_nowait(symbol)
                continue
            except (RestError, BackfillFormatError, *DB_ERRORS) as exc:
                stop_if_cancelled()
                self.failed[symbol] = f"{type(exc).__name__}: {exc}"[:300]
                self.metrics.incr("BackfillFailures")
                log.warning("candle backfill failed", extra={"symbol": symbol, "error": self.failed[symbol]})
            self._queued.discard(symbol)

    async def backfill(self, symbol: str) -> int:
        stored = 0
        for exchange in self.catalog.exchanges_for(symbol):
            for interval, span in PLAN:
                stored += await self._backfill(exchange, symbol, interval, span)
        return stored

    async def _backfill(self, exchange: str, symbol: str, interval: str, span: int) -> int:
        step = NATIVE[interval]
        now = int(self.clock())
        cursor = (now - span) // step * step
        if interval != "1m":
            newest = await newest_bar(self.db, exchange, symbol, interval)
            if newest is not None:
                cursor = max(cursor, int(newest.timestamp()) + step)
        stored = 0
        while cursor + step <= now:  # at least one closed bar left to fetch
            if exchange == "binance":
                bars = await self._binance_page(symbol, interval, cursor, now)
            else:
                bars = await self._gateio_page(symbol, interval, cursor, step, now)
            stored += await save_bars(self.db, interval, bars)
            cursor += PAGE * step
        return stored

    async def _binance_page(self, symbol: str, interval: str, cursor: int, now: int) -> list[Candle]:
        body = await self.apis.binance.get(
            "/api/v3/klines",
            {
                "symbol": exchange_symbol(symbol),
                "interval": interval,
                "startTime": cursor * 1000,
                "endTime": now * 1000,
                "limit": PAGE,
            },
            budget=self.apis.binance_budget,
            cost=KLINES_WEIGHT,
        )
        return parse_binance_klines(symbol, body, now_ms=now * 1000)

    async def _gateio_page(self, symbol: str, interval: str, cursor: int, step: int, now: int) -> list[Candle]:
        body = await self.apis.gateio.get(
            "/spot/candlesticks",
            {
                "currency_pair": currency_pair(symbol),
                "interval": interval,
                "from": cursor,
                "to": min(now, cursor + (PAGE - 1) * step),
            },
            budget=self.apis.gateio_budget("spot/candlesticks"),
            cost=1,
        )
        return parse_gateio_candlesticks(symbol, body, step=step, now_s=now)
