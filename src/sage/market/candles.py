"""One-minute OHLCV candles built from ticker updates, persisted to PostgreSQL.

The aggregator runs in the ingestor's hot path (pure, synchronous). The store upserts
closed bars and the bar in progress every few seconds, merging with what is already
stored (greatest high, least low) so a failover mid-minute never loses a move, and
deletes bars older than the retention period.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import MAX_PREC, Context, Decimal
from functools import reduce

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError

from sage.market.models import Candle, Ticker, ticker_texts
from sage.observability.metrics import Metrics
from sage.store.db import Database
from sage.store.market_tables import CandleRow

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
# Volume arithmetic is exact: adding and subtracting in a context this precise never rounds (the
# default's 28 digits round a 1e13 volume plus a growth of 1e-16), and plain decimals of
# exchange-sized texts stay small.
_EXACT = Context(prec=MAX_PREC)
_add, _subtract = _EXACT.add, _EXACT.subtract
MAX_RUNS = 64  # finished runs of volume growth a bar keeps before summing them (bounds its memory)
MAX_RUN_TEXTS = 2 * MAX_RUNS  # their first and last volume texts


@dataclass(slots=True)
class OpenBar:
    """A bar in progress, kept as the exchange's texts: ingestion parses no number. Prices and
    the rolling volume are compared as floats, with the exact `Decimal`s only on a float tie
    between different texts (a float rounds correctly and monotonically, so a strict float order
    is the decimal order). The frame hot path (sage.market.hot_path) compares the texts
    themselves while high, low and close share the update's candle class (`candle_class`)."""

    minute: int  # epoch minutes
    end_ms: int  # the bar's end, epoch milliseconds: updates arrive in order, so earlier is this bar's
    open_text: str
    high_text: str
    high_class: bytes | None  # the candle class of the update that set the high
    low_text: str
    low_class: bytes | None
    close_text: str  # the last update's price ...
    close_volume_text: str  # ... and its rolling 24 h base volume ...
    candle_class: bytes | None  # the class of high, low and close when they share one, else None
    traded: Decimal  # volume of the finished runs of growth summed so far (see `volume`)
    ticks: int
    run_start_volume: str  # ... and the volume where the current run of growth began
    runs: list[str]  # volume texts of the finished runs not yet in `traded`: first, last, first, last...

    @property
    def volume(self) -> Decimal:
        """The sum of every growth of the rolling volume between consecutive updates. While the
        volume does not shrink that sum is simply last - first, so a bar only notes where a run
        of growth started and ended, and subtracts when the volume is read (or when
        `MAX_RUNS` runs are waiting): one comparison per update, no Decimal."""
        self.fold()
        return _add(self.traded, _subtract(Decimal(self.close_volume_text), Decimal(self.run_start_volume)))

    def end_run(self, volume: str) -> None:
        """The rolling volume shrank to `volume` (the new update's): the run of growth up to the
        close ends, and a new one starts."""
        first, last = self.run_start_volume, self.close_volume_text
        if first is not last:  # a run of one update grew by nothing
            runs = self.runs
            runs.append(first)
            runs.append(last)
            if len(runs) >= MAX_RUN_TEXTS:
                self.fold()
        self.run_start_volume = volume

    def fold(self) -> None:
        # Each text becomes a Decimal here, once, and each run's last - first is added, in C.
        runs = self.runs
        if runs:
            self.traded = reduce(_add, map(_subtract, map(Decimal, runs[1::2]), map(Decimal, runs[::2])), self.traded)
            runs.clear()

    def candle(self, exchange: str, symbol: str) -> Candle:
        return Candle(
            exchange=exchange,
            symbol=symbol,
            start=datetime.fromtimestamp(self.minute * 60, UTC),
            open=Decimal(self.open_text),
            high=Decimal(self.high_text),
            low=Decimal(self.low_text),
            close=Decimal(self.close_text),
            volume=self.volume,
            ticks=self.ticks,
        )


def longer_spelling(longer: str, shorter: str) -> bool:
    """Whether `longer`, which starts with `shorter`, is `shorter` with trailing zeros (and a
    point) added: the same number, which text order puts after it."""
    return not longer[len(shorter) :].strip(".0")


class CandleAggregator:
    """Bars per (exchange, symbol). Updates arrive in event-time order (the pipeline's
    guard drops older ones), so a bar closes when the first update of a later minute
    arrives. Closed bars wait in a bounded deque for the store.

    Volume: the rolling 24 h volume shrinks when old trades leave the window, so only
    its growth between consecutive updates counts as traded volume."""

    def __init__(self, *, max_closed: int = 10_000) -> None:
        self._open: dict[tuple[str, str], OpenBar] = {}
        self._closed: deque[Candle] = deque(maxlen=max_closed)
        self.dropped = 0

    def add(self, t: Ticker) -> OpenBar:
        """Takes `t` into its key's bar; returns the key's open bar."""
        texts = ticker_texts(t)
        return self.update(t.key, t.event_ms, texts[0], texts[6], t._candle_class)

    def update(
        self, key: tuple[str, str], event_ms: int, price: str, volume: str, candle_class: bytes | None
    ) -> OpenBar:
        """An update of `key` with this price and base volume (decimal texts, `Decimal` reads
        them exactly) and candle class; returns the key's open bar."""
        minute = event_ms // 60_000
        bar = self._open.get(key)
        if bar is not None and minute == bar.minute:
            self._compare_numbers(bar, price, volume, candle_class)
            if (
                candle_class is not None
                and bar.high_class is candle_class
                and bar.low_class is candle_class
                and volume[0] != "-"  # a sign would reverse the text order
            ):
                bar.candle_class = candle_class
            else:
                bar.candle_class = None
            bar.close_text, bar.close_volume_text = price, volume
            bar.ticks += 1
            return bar
        traded = _ZERO
        if bar is not None:
            if minute < bar.minute:
                return bar
            growth = _subtract(Decimal(volume), Decimal(bar.close_volume_text))
            if growth > 0:
                traded = growth
            self._close(bar.candle(*key))
        bar_class = candle_class if volume[0] != "-" else None
        bar = self._open[key] = OpenBar(
            minute,
            (minute + 1) * 60_000,
            price,
            price,
            candle_class,
            price,
            candle_class,
            price,
            volume,
            bar_class,
            traded,
            1,
            volume,
            [],
        )
        return bar

    @staticmethod
    def _compare_numbers(bar: OpenBar, price: str, volume: str, candle_class: bytes | None) -> None:
        """High, low and the end of a run of volume growth: by floats, and by `Decimal`s where
        the floats tie."""
        price_float, high_float = float(price), float(bar.high_text)
        if price_float > high_float or (
            price_float == high_float and price != bar.high_text and Decimal(price) > Decimal(bar.high_text)
        ):
            bar.high_text, bar.high_class = price, candle_class
        else:
            low_float = float(bar.low_text)
            if price_float < low_float or (
                price_float == low_float and price != bar.low_text and Decimal(price) < Decimal(bar.low_text)
            ):
                bar.low_text, bar.low_class = price, candle_class
        volume_float, close_float = float(volume), float(bar.close_volume_text)
        if volume_float < close_float or (
            volume_float == close_float
            and volume != bar.close_volume_text
            and Decimal(volume) < Decimal(bar.close_volume_text)
        ):
            bar.end_run(volume)

    def _close(self, candle: Candle) -> None:
        if len(self._closed) == self._closed.maxlen:
            self.dropped += 1
        self._closed.append(candle)

    def drain(self) -> list[Candle]:
        """Closed bars since the last drain, plus a snapshot of every bar in progress."""
        closed = list(self._closed)
        self._closed.clear()
        return closed + [bar.candle(*key) for key, bar in self._open.items()]

    def requeue(self, candles: list[Candle]) -> None:
        """Put back bars a failed write could not store (bounded like everything else)."""
        open_starts = {key: bar.minute for key, bar in self._open.items()}
        for candle in candles:
            minute = int(candle.start.timestamp()) // 60
            if open_starts.get((candle.exchange, candle.symbol)) != minute:
                self._close(candle)


class CandleStore:
    def __init__(
        self,
        db: Database,
        aggregator: CandleAggregator,
        metrics: Metrics,
        *,
        retention_days: int,
        flush_seconds: float = 5.0,
        retention_check_seconds: float = 3600.0,
    ) -> None:
        self.db = db
        self.aggregator = aggregator
        self.metrics = metrics
        self.retention = timedelta(days=retention_days)
        self.flush_seconds = flush_seconds
        self.retention_check_seconds = retention_check_seconds
        self.written = 0
        self.failures = 0

    async def run(self) -> None:
        next_retention = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
            if loop.time() >= next_retention:
                await self.prune()
                next_retention = loop.time() + self.retention_check_seconds

    async def flush(self) -> int:
        candles = self.aggregator.drain()
        if not candles:
            return 0
        try:
            await self.write(candles)
        except (OSError, OperationalError, DBAPIError, TimeoutError) as exc:
            self.failures += 1
            self.metrics.incr("CandleWriteFailures")
            log.warning("candle write failed; will retry", extra={"error": type(exc).__name__, "bars": len(candles)})
            self.aggregator.requeue(candles)
            return 0
        self.written += len(candles)
        return len(candles)

    async def write(self, candles: list[Candle]) -> None:
        rows = {
            (c.exchange, c.symbol, c.start): {
                "exchange": c.exchange,
                "symbol": c.symbol,
                "interval": "1m",
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
        stmt = insert(CandleRow).values(list(rows.values()))
        excluded = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[CandleRow.exchange, CandleRow.symbol, CandleRow.interval, CandleRow.start],
            set_={
                "high": func.greatest(CandleRow.high, excluded.high),
                "low": func.least(CandleRow.low, excluded.low),
                "close": excluded.close,
                "volume": func.greatest(CandleRow.volume, excluded.volume),
                "ticks": func.greatest(CandleRow.ticks, excluded.ticks),
                "updated_at": func.now(),
            },
        )
        async with self.db.session() as session:
            await session.execute(stmt)
            await session.commit()

    async def prune(self, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - self.retention
        try:
            async with self.db.session() as session:
                result = await session.execute(
                    delete(CandleRow).where(CandleRow.interval == "1m", CandleRow.start < cutoff)
                )
                await session.commit()
        except (OSError, OperationalError, DBAPIError, TimeoutError) as exc:
            log.warning("candle retention failed; will retry", extra={"error": type(exc).__name__})
            return 0
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
