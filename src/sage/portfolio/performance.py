"""Portfolio value over time, recomputed from the ledger and the market's stored candles.

Each point values the holdings at time t (replaying the ledger up to t, so a trade recorded
in the past moves the curve) at the last one-minute candle close in the step before t, from
the first exchange (Binance, then Gate.io) that has one. A held symbol with no candle in that step makes
the point's value unknown (null) and is listed in `missing`: values are never invented.

Time-weighted return chains the per-step returns `(V_i - F_i) / V_(i-1) - 1`, where `F_i`
is the net deposits during the step (taken as arriving at its end), so deposits and
withdrawals do not count as performance. Max drawdown is measured on that chained index.
The benchmark is holding BTC/USDT over the same points.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sage.market.models import EXCHANGES
from sage.portfolio.ledger import PRECISION, Entry, Ledger
from sage.store.db import Database

BENCHMARK = "BTC/USDT"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOURLY_UP_TO = timedelta(days=30)
RANGES: dict[str, timedelta | None] = {
    "1d": timedelta(days=1),
    "1w": timedelta(days=7),
    "1m": timedelta(days=30),
    "3m": timedelta(days=90),
    "1y": timedelta(days=365),
    "all": None,
}
_HUNDRED = Decimal(100)

# The close of the last one-minute candle in the step before each (symbol, point) asked for,
# from the first exchange in EXCHANGES order that has one (COALESCE stops at the first hit:
# one primary-key probe per pair when Binance has the bar, a second only when it has not).
# asyncpg parameters; the result is read as records through the session's own connection.
_PROBE = """(SELECT m.close FROM market_candles m
              WHERE m.exchange = ${n} AND m.symbol = p.symbol AND m.start < p.t AND m.start >= p.t - $3::interval
           ORDER BY m.start DESC LIMIT 1)"""
CLOSES_SQL = (
    "SELECT p.symbol, p.t, COALESCE("
    + ", ".join(_PROBE.format(n=4 + i) for i in range(len(EXCHANGES)))
    + ") AS close FROM unnest($1::text[], $2::timestamptz[]) AS p(symbol, t)"
)

Prices = dict[tuple[str, datetime], Decimal]


@dataclass(frozen=True)
class Point:
    at: datetime
    value: Decimal | None  # cash + holdings at candle closes; None when a held symbol has no candle
    net_deposits: Decimal
    benchmark_value: Decimal | None  # the first valued point's value, held in BTC/USDT instead


@dataclass(frozen=True)
class Gap:
    symbol: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Performance:
    range: str
    resolution: str  # 1h | 1d
    start: datetime
    end: datetime
    points: tuple[Point, ...]
    time_weighted_return_pct: Decimal | None
    max_drawdown_pct: Decimal | None
    benchmark_symbol: str
    benchmark_return_pct: Decimal | None
    complete: bool  # every point valued and the benchmark priced at every point
    missing: tuple[Gap, ...]


def window(range_: str, now: datetime, first_activity: datetime | None) -> tuple[datetime, timedelta]:
    """Start and step of a range: hourly up to 30 days, daily beyond."""
    span = RANGES[range_]
    if span is None:
        span = now - first_activity if first_activity is not None else DAY
        span = max(span, HOUR)
    return now - span, HOUR if span <= HOURLY_UP_TO else DAY


def grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """`start`, then every step boundary (aligned to the epoch) up to `end`, then `end`."""
    epoch = datetime(1970, 1, 1, tzinfo=start.tzinfo)
    first = epoch + step * ((start - epoch) // step + 1)
    times = [start]
    t = first
    while t < end:
        times.append(t)
        t += step
    times.append(end)
    return times


async def candle_closes(db: Database, wanted: Sequence[tuple[str, datetime]], step: timedelta) -> Prices:
    """Closes for the (symbol, time) pairs asked for: only what a valuation needs is probed."""
    if not wanted:
        return {}
    async with db.session() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        rows = await raw.driver_connection.fetch(  # type: ignore[union-attr]
            CLOSES_SQL, [s for s, _ in wanted], [t for _, t in wanted], step, *EXCHANGES
        )
    return {(symbol, t): close for symbol, t, close in rows if close is not None}


def held_at(entries: Sequence[Entry], times: Sequence[datetime]) -> list[tuple[str, datetime]]:
    """(symbol, time) for every symbol held at each time (entries valid, in execution order)."""
    quantities: dict[str, Decimal] = {}
    pairs: list[tuple[str, datetime]] = []
    index = 0
    for t in times:
        while index < len(entries) and entries[index].executed_at <= t:
            entry = entries[index]
            index += 1
            if entry.symbol is not None:
                change = entry.quantity if entry.kind == "buy" else -entry.quantity
                quantities[entry.symbol] = quantities.get(entry.symbol, Decimal(0)) + change
        pairs.extend((symbol, t) for symbol, quantity in quantities.items() if quantity > 0)
    return pairs


def values_at(entries: Sequence[Entry], times: Sequence[datetime], prices: Prices) -> tuple[list[Point], list[Gap]]:
    """The portfolio's value and net deposits at each time (entries in execution order)."""
    ledger = Ledger()
    points: list[Point] = []
    open_gaps: dict[str, Gap] = {}
    gaps: list[Gap] = []
    index = 0
    with decimal.localcontext(prec=PRECISION):
        for t in times:
            while index < len(entries) and entries[index].executed_at <= t:
                ledger.apply_exact(entries[index])
                index += 1
            value: Decimal | None = ledger.cash
            for symbol, held in ledger.holdings.items():
                price = prices.get((symbol, t))
                if price is None:
                    value = None
                    gap = open_gaps.get(symbol)
                    open_gaps[symbol] = Gap(symbol, gap.start if gap else t, t)
                elif value is not None:
                    value += held.quantity * price
            for symbol in [s for s in open_gaps if prices.get((s, t)) is not None or s not in ledger.holdings]:
                gaps.append(open_gaps.pop(symbol))
            points.append(Point(t, value, ledger.net_deposits, None))
    gaps.extend(open_gaps.values())
    return points, gaps


def time_weighted(points: Sequence[Point]) -> tuple[Decimal | None, Decimal | None]:
    """(time-weighted return %, max drawdown %) over the steps whose both ends are valued."""
    index = Decimal(1)
    peak = Decimal(1)
    drawdown = Decimal(0)
    measured = False
    with decimal.localcontext(prec=PRECISION):
        for before, after in itertools.pairwise(points):
            if before.value is None or after.value is None or before.value <= 0:
                continue
            flow = after.net_deposits - before.net_deposits
            index *= (after.value - flow) / before.value
            measured = True
            peak = max(peak, index)
            drawdown = max(drawdown, (peak - index) / peak)
    if not measured:
        return None, None
    return (index - 1) * _HUNDRED, drawdown * _HUNDRED


def with_benchmark(points: list[Point], prices: Prices, symbol: str = BENCHMARK) -> tuple[list[Point], Decimal | None]:
    """Each point's benchmark value: the first valued point's value held in `symbol`."""
    base = next((p for p in points if p.value is not None and p.value > 0 and (symbol, p.at) in prices), None)
    if base is None or base.value is None:
        return points, None
    start_price = prices[(symbol, base.at)]
    out: list[Point] = []
    last_price: Decimal | None = None
    for p in points:
        price = prices.get((symbol, p.at))
        bench = None if price is None or p.at < base.at else base.value * price / start_price
        if price is not None and p.at >= base.at:
            last_price = price
        out.append(Point(p.at, p.value, p.net_deposits, bench))
    ret = (last_price / start_price - 1) * _HUNDRED if last_price is not None else None
    return out, ret


async def performance(
    db: Database, entries: Sequence[Entry], *, range_: str, now: datetime, created_at: datetime
) -> Performance:
    first = entries[0].executed_at if entries else created_at
    start, step = window(range_, now, min(first, created_at))
    times = grid(start, now, step)
    wanted = set(held_at(entries, times)) | {(BENCHMARK, t) for t in times}
    prices = await candle_closes(db, sorted(wanted), step)
    points, gaps = values_at(entries, times, prices)
    twr, drawdown = time_weighted(points)
    points, benchmark_return = with_benchmark(points, prices)
    bench_missing = [t for t in times if (BENCHMARK, t) not in prices]
    if bench_missing:
        gaps.append(Gap(f"{BENCHMARK} (benchmark)", bench_missing[0], bench_missing[-1]))
    return Performance(
        range=range_,
        resolution="1h" if step == HOUR else "1d",
        start=start,
        end=now,
        points=tuple(points),
        time_weighted_return_pct=twr,
        max_drawdown_pct=drawdown,
        benchmark_symbol=BENCHMARK,
        benchmark_return_pct=benchmark_return,
        complete=not gaps,
        missing=tuple(sorted(gaps, key=lambda g: (g.symbol, g.start))),
    )
