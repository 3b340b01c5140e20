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
from decimal import Decimal

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError

from sage.market.models import Candle, Ticker
from sage.observability.metrics import Metrics
from sage.store.db import Database
from sage.store.market_tables import CandleRow

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
MAX_RUNS = 64  # finished runs of volume growth a bar keeps before summing them (bounds its memory)


@dataclass(slots=True)
class _Bar:
    """A bar in progress. Ingestion parses no number. While the high, the low and the close
    share the new update's candle class (sage.market.feeds.base: as many digits before the
    point in the price and in the volume, no sign on the volume) their strings are compared
    directly, text order being number order then, but for an equal value spelled with more
    trailing zeros (`_longer_spelling`), which replaces no high or low and ends no run of volume
    growth. Otherwise prices and the rolling volume are compared as floats, with the exact
    `Decimal`s only on a float tie between different texts (a float rounds correctly and
    monotonically, so a strict float order is the decimal order). The bar keeps the tickers
    whose `Decimal`s it reports, read when a candle is made."""

    minute: int  # epoch minutes
    open: Ticker
    high: Ticker
    high_text: str
    high_float: float | None  # float(high_text) when known (the text comparisons keep none)
    low: Ticker
    low_text: str
    low_float: float | None
    close: Ticker  # the last update, also the rolling 24 h base volume at the last update ...
    close_volume_text: str
    close_volume_float: float | None
    candle_class: bytes | None  # the class of high, low and close when they share one, else None
    traded: Decimal  # volume of the finished runs of growth summed so far (see `volume`)
    ticks: int
    run_start: Ticker  # ... and the update where the current run of growth began
    runs: list[tuple[Ticker, Ticker]]  # finished runs (first, last update) not yet in `traded`

    @property
    def volume(self) -> Decimal:
        """The sum of every growth of the rolling volume between consecutive updates. While the
        volume does not shrink that sum is simply last - first, so a bar only notes where a run
        of growth started and ended, and subtracts when the volume is read (or when
        `MAX_RUNS` runs are waiting): one float comparison per update, no Decimal."""
        self.fold()
        return self.traded + (self.close.base_volume - self.run_start.base_volume)

    def fold(self) -> None:
        # Straight from the strings: each update is read here once, so caching its Decimal on
        # the ticker (`base_volume`) would only cost a list per ticker.
        traded = self.traded
        for first, last in self.runs:
            first_text, last_text = first._text, last._text
            traded += (Decimal(last_text[6]) if last_text is not None else last.base_volume) - (
                Decimal(first_text[6]) if first_text is not None else first.base_volume
            )
        self.traded = traded
        self.runs.clear()

    def candle(self, exchange: str, symbol: str) -> Candle:
        return Candle(
            exchange=exchange,
            symbol=symbol,
            start=datetime.fromtimestamp(self.minute * 60, UTC),
            open=self.open.last,
            high=self.high.last,
            low=self.low.last,
            close=self.close.last,
            volume=self.volume,
            ticks=self.ticks,
        )


def _longer_spelling(longer: str, shorter: str) -> bool:
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
        self._open: dict[tuple[str, str], _Bar] = {}
        self._closed: deque[Candle] = deque(maxlen=max_closed)
        self.dropped = 0

    def add(self, t: Ticker) -> None:
        key = t.key
        minute = t.event_ms // 60_000
        raw = t._text
        if raw is not None:
            price, volume = raw[0], raw[6]
        else:
            price, volume = str(t.last), str(t.base_volume)
        bar = self._open.get(key)
        if bar is not None and minute == bar.minute:
            candle_class = t._candle_class
            if candle_class is not None and candle_class is bar.candle_class:  # every comparison on the texts
                # (`startswith` first: a text that merely sorts after another is seldom its longer spelling)
                high_text = bar.high_text
                if price > high_text:
                    if not (price.startswith(high_text) and _longer_spelling(price, high_text)):
                        bar.high, bar.high_text, bar.high_float = t, price, None
                else:
                    low_text = bar.low_text
                    if price < low_text and not (low_text.startswith(price) and _longer_spelling(low_text, price)):
                        bar.low, bar.low_text, bar.low_float = t, price, None
                close_volume = bar.close_volume_text
                if volume < close_volume and not (
                    close_volume.startswith(volume) and _longer_spelling(close_volume, volume)
                ):
                    self._end_run(bar, t)  # old trades left the 24 h window: a run ends
                bar.close_volume_float = None
            else:
                bar.close_volume_float = self._compare_numbers(bar, t, price, volume)
                if (
                    candle_class is not None
                    and bar.high._candle_class is candle_class
                    and bar.low._candle_class is candle_class
                    and volume[0] != "-"
                ):
                    bar.candle_class = candle_class
                else:
                    bar.candle_class = None
            bar.close, bar.close_volume_text = t, volume
            bar.ticks += 1
            return
        traded = _ZERO
        if bar is not None:
            if minute < bar.minute:
                return
            if t.base_volume > bar.close.base_volume:
                traded = t.base_volume - bar.close.base_volume
            self._close(bar.candle(*key))
        candle_class = t._candle_class if volume[0] != "-" else None  # a sign would reverse the text order
        self._open[key] = _Bar(
            minute, t, t, price, None, t, price, None, t, volume, None, candle_class, traded, 1, t, []
        )

    @staticmethod
    def _compare_numbers(bar: _Bar, t: Ticker, price: str, volume: str) -> float:
        """High, low and the end of a run of volume growth, for an update whose texts do not line
        up with the bar's: by floats, and by `Decimal`s where the floats tie. Returns the float
        of `volume`, which the next update compares with."""
        price_float = float(price)
        high_float = bar.high_float
        if high_float is None:
            high_float = bar.high_float = float(bar.high_text)
        if price_float > high_float or (
            price_float == high_float and price != bar.high_text and t.last > bar.high.last
        ):
            bar.high, bar.high_text, bar.high_float = t, price, price_float
        else:
            low_float = bar.low_float
            if low_float is None:
                low_float = bar.low_float = float(bar.low_text)
            if price_float < low_float or (
                price_float == low_float and price != bar.low_text and t.last < bar.low.last
            ):
                bar.low, bar.low_text, bar.low_float = t, price, price_float
        volume_float, close_float = float(volume), bar.close_volume_float
        if close_float is None:
            close_float = float(bar.close_volume_text)
        if volume_float < close_float or (
            volume_float == close_float and volume != bar.close_volume_text and t.base_volume < bar.close.base_volume
        ):
            CandleAggregator._end_run(bar, t)
        return volume_float

    @staticmethod
    def _end_run(bar: _Bar, t: Ticker) -> None:
        """The rolling volume shrank at `t`: the run of growth up to the previous update ends."""
        if bar.run_start is not bar.close:  # a run of one update grew by nothing
            runs = bar.runs
            runs.append((bar.run_start, bar.close))
            if len(runs) == MAX_RUNS:
                bar.fold()
        bar.run_start = t

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
