"""Portfolio value over time, recomputed from the ledger and the market's stored candles.

Each point values the holdings at time t (the ledger's state after the transactions executed
by then, so a trade recorded in the past moves the curve) at the last one-minute candle close
in the step before t, from the first exchange (Binance, then Gate.io) that has one. A held
symbol with no candle in that step makes the point's value unknown (null) and is listed in
`missing`: values are never invented.

Time-weighted return chains the per-step returns `(V_i - F_i) / V_(i-1) - 1`, where `F_i`
is the net deposits during the step (taken as arriving at its end), so deposits and
withdrawals do not count as performance. Max drawdown is measured on that chained index.
The benchmark is holding BTC/USDT over the same points.

This module is the arithmetic: the ledger's state at each time comes from the caller (a
cached `Timeline`, or persisted checkpoints), and valued step-boundary points are persisted
by `sage.portfolio.points`, so a series values only the points nobody has valued yet
(PortfolioService.performance puts the pieces together).
"""

from __future__ import annotations

import decimal
import itertools
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sage.market.models import EXCHANGES
from sage.portfolio.ledger import PRECISION
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

# The close of the latest candle in the step before each (symbol, point) asked for, from the
# first exchange in EXCHANGES order that has one (COALESCE stops at the first hit: one
# index-only descent of ix_market_candles_exchange_symbol_start per pair when Binance has the
# bar, a second only when it has not). Bars of any stored interval count; of bars starting at
# the same time, the shortest interval's ('1m' > '1h' > '1d' as text) is taken, so the
# answer does not depend on the scan order. With each row: the candle epoch and the statement's
# time, read in the same snapshot as the closes (sage.portfolio.points: what storing the points
# valued at them is checked against). asyncpg parameters; read through the session's own
# connection.
_PROBE = """(SELECT m.close FROM market_candles m
              WHERE m.exchange = ${n} AND m.symbol = p.symbol AND m.start < p.t AND m.start >= p.t - $3::interval
           ORDER BY m.start DESC, m.interval DESC LIMIT 1)"""
CLOSES_SQL = (
    "SELECT p.symbol, p.t, COALESCE("
    + ", ".join(_PROBE.format(n=4 + i) for i in range(len(EXCHANGES)))
    + ") AS close, e.epoch, statement_timestamp() AS read_at"
    " FROM unnest($1::text[], $2::timestamptz[]) AS p(symbol, t) LEFT JOIN market_candle_epoch e ON true"
)

Prices = dict[tuple[str, datetime], Decimal]


@dataclass(frozen=True)
class Point:
    at: datetime
    value: Decimal | None  # cash + holdings at candle closes; None when a held symbol has no candle
    net_deposits: Decimal
    benchmark_value: Decimal | None  # the first valued point's value, held in BTC/USDT instead


@dataclass(frozen=True)
class Holdings:
    """The ledger's state at one time, as a point values it: cash, net deposits and the
    quantities held (in the ledger's order: a new position last)."""

    cash: Decimal
    net_deposits: Decimal
    held: dict[str, Decimal]


@dataclass(frozen=True)
class ValuedPoint:
    """A point as valued (and persisted, sage.portfolio.points): without its benchmark value,
    which depends on the range's first point."""

    point: Point
    missing: tuple[str, ...]  # held symbols without a close
    benchmark: Decimal | None  # the benchmark's close


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


@dataclass(frozen=True)
class Closes:
    """Probed closes, with the candle epoch and the database time they were read at."""

    prices: Prices
    epoch: int | None  # None: nothing was probed
    read_at: datetime | None


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


async def candle_closes(db: Database, wanted: Sequence[tuple[str, datetime]], step: timedelta) -> Closes:
    """Closes for the (symbol, time) pairs asked for: only what a valuation needs is probed."""
    if not wanted:
        return Closes({}, None, None)
    async with db.session() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        rows = await raw.driver_connection.fetch(  # type: ignore[union-attr]
            CLOSES_SQL, [s for s, _ in wanted], [t for _, t in wanted], step, *EXCHANGES
        )
    prices = {(symbol, t): close for symbol, t, close, _, _ in rows if close is not None}
    if not rows or rows[0][3] is None:  # no epoch row (deleted by hand): closes, but nothing to store
        return Closes(prices, None, None)
    return Closes(prices, int(rows[0][3]), rows[0][4])


class KeptCloses:
    """The closes of step boundaries this process probed, reused while the candle epoch is the
    one they were probed under (a candle written into a past step bumps it: migration 0016),
    so a series valued again after a ledger edit probes only what it has not seen. Only
    boundaries at least `settled_after` older than the probe's database time are kept (a live
    bar can still land in a younger step without bumping the epoch: the argument is the one
    for stored points, sage.portfolio.points); the oldest go first beyond `size` (~200 bytes
    each)."""

    def __init__(self, settled_after: timedelta, size: int = 200_000) -> None:
        self.settled_after = settled_after
        self.size = size
        self.epoch: int | None = None
        self._kept: OrderedDict[tuple[str, timedelta, datetime], Decimal | None] = OrderedDict()
        self.probed = 0  # pairs asked of PostgreSQL (the benchmark prints it)

    async def closes(
        self, db: Database, wanted: Sequence[tuple[str, datetime]], step: timedelta, boundaries: set[datetime]
    ) -> Closes:
        """The closes of `wanted`; `boundaries`: the times worth keeping."""
        kept: Prices = {}
        probe: list[tuple[str, datetime]] = []
        kept_under = self.epoch  # read before awaiting: another series may move it meanwhile
        for symbol, t in wanted:
            key = (symbol, step, t)
            if key in self._kept:
                close = self._kept[key]
                if close is not None:
                    kept[(symbol, t)] = close
            else:
                probe.append((symbol, t))
        fresh = await candle_closes(db, probe, step)
        if len(probe) < len(wanted) and fresh.epoch != kept_under:
            # the candles changed since the kept closes were probed (or nothing was probed to
            # tell): none of them is used
            kept, probe = {}, list(wanted)
            fresh = await candle_closes(db, probe, step)
        self.probed += len(probe)
        if fresh.epoch is None or fresh.read_at is None or (self.epoch is not None and fresh.epoch < self.epoch):
            return Closes({**kept, **fresh.prices}, fresh.epoch, fresh.read_at)  # an older snapshot: keep nothing
        if fresh.epoch != self.epoch:
            self._kept.clear()
            self.epoch = fresh.epoch
        settled = fresh.read_at - self.settled_after
        for symbol, t in probe:
            if t in boundaries and t <= settled:
                self._kept[(symbol, step, t)] = fresh.prices.get((symbol, t))
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return Closes({**kept, **fresh.prices}, fresh.epoch, fresh.read_at)

    def clear(self) -> None:
        self._kept.clear()
        self.epoch = None


def wanted(times: Sequence[datetime], states: Sequence[Holdings]) -> list[tuple[str, datetime]]:
    """(symbol, time) for every symbol held at each time, and the benchmark at each time."""
    pairs = {(symbol, t) for t, state in zip(times, states, strict=True) for symbol in state.held}
    pairs.update((BENCHMARK, t) for t in times)
    return sorted(pairs)


def value(times: Sequence[datetime], states: Sequence[Holdings], prices: Prices) -> list[ValuedPoint]:
    """Each time's point: its holdings at `prices`, the held symbols `prices` has no close for."""
    out: list[ValuedPoint] = []
    with decimal.localcontext(prec=PRECISION):
        for t, state in zip(times, states, strict=True):
            total: Decimal | None = state.cash
            missing: list[str] = []
            for symbol, quantity in state.held.items():
                price = prices.get((symbol, t))
                if price is None:
                    total = None
                    missing.append(symbol)
                elif total is not None:
                    total += quantity * price
            out.append(
                ValuedPoint(Point(t, total, state.net_deposits, None), tuple(missing), prices.get((BENCHMARK, t)))
            )
    return out


def gaps_of(valued: Sequence[ValuedPoint]) -> list[Gap]:
    """Runs of consecutive points where a held symbol had no close."""
    open_gaps: dict[str, Gap] = {}
    gaps: list[Gap] = []
    for v in valued:
        for symbol in v.missing:
            gap = open_gaps.get(symbol)
            open_gaps[symbol] = Gap(symbol, gap.start if gap else v.point.at, v.point.at)
        for symbol in [s for s in open_gaps if s not in v.missing]:
            gaps.append(open_gaps.pop(symbol))
    gaps.extend(open_gaps.values())
    return gaps


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


def series(range_: str, start: datetime, end: datetime, step: timedelta, valued: Sequence[ValuedPoint]) -> Performance:
    """The series of a range from its valued points (`grid` order): returns, drawdown, benchmark, gaps."""
    gaps = gaps_of(valued)
    points = [v.point for v in valued]
    twr, drawdown = time_weighted(points)
    benchmark = {(BENCHMARK, v.point.at): v.benchmark for v in valued if v.benchmark is not None}
    points, benchmark_return = with_benchmark(points, benchmark)
    bench_missing = [v.point.at for v in valued if v.benchmark is None]
    if bench_missing:
        gaps.append(Gap(f"{BENCHMARK} (benchmark)", bench_missing[0], bench_missing[-1]))
    return Performance(
        range=range_,
        resolution="1h" if step == HOUR else "1d",
        start=start,
        end=end,
        points=tuple(points),
        time_weighted_return_pct=twr,
        max_drawdown_pct=drawdown,
        benchmark_symbol=BENCHMARK,
        benchmark_return_pct=benchmark_return,
        complete=not gaps,
        missing=tuple(sorted(gaps, key=lambda g: (g.symbol, g.start))),
    )
