"""Portfolio value over time, recomputed from the ledger and the market's stored candles.

Each point values the holdings at time t (replaying the ledger up to t, so a trade recorded
in the past moves the curve) at the last one-minute candle close in the step before t, from
the first exchange (Binance, then Gate.io) that has one. A held symbol with no candle in that step makes
the point's value unknown (null) and is listed in `missing`: values are never invented.

Time-weighted return chains the per-step returns `(V_i - F_i) / V_(i-1) - 1`, where `F_i`
is the net deposits during the step (taken as arriving at its end), so deposits and
withdrawals do not count as performance. Max drawdown is measured on that chained index.
The benchmark is holding BTC/USDT over the same points.

Cost (bench/bench_portfolio.py): the ledger is not replayed per request but read from the
portfolio's cached `Timeline` (sage.portfolio.state), and each close of a step that ended
more than `SETTLED_AFTER` ago is probed once and then kept for `CLOSES_KEPT_FOR` (`Closes`):
a 1-year series of 50 symbols needs ~18,000 closes, and only the few of the open steps
(the range's start and now) are probed again. A candle written later into a past step (a
backfill after an outage) shows up once its kept close expires.
"""

from __future__ import annotations

import decimal
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sage.market.models import EXCHANGES
from sage.portfolio.ledger import PRECISION, ZERO
from sage.portfolio.state import Timeline
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
SETTLED_AFTER = timedelta(minutes=10)  # a step that ended this long ago has its candles written
CLOSES_KEPT_FOR = 600.0  # seconds a settled step's close is reused before it is probed again
MAX_KEPT_CLOSES = 200_000  # ~40 MB: eleven 1-year series of 50 different symbols
MAX_KEPT_POINTS = 5_000  # per ledger version: expired points are dropped beyond this

# The close of the latest candle in the step before each (symbol, point) asked for, from the
# first exchange in EXCHANGES order that has one (COALESCE stops at the first hit: one
# index-only descent of ix_market_candles_exchange_symbol_start per pair when Binance has the
# bar, a second only when it has not). Bars of any stored interval count; of bars starting at
# the same time, the shortest interval's ('1m' > '1h' > '1d' as text) is taken, so the
# answer does not depend on the scan order. asyncpg parameters; the result is read as records
# through the session's own connection.
_PROBE = """(SELECT m.close FROM market_candles m
              WHERE m.exchange = ${n} AND m.symbol = p.symbol AND m.start < p.t AND m.start >= p.t - $3::interval
           ORDER BY m.start DESC, m.interval DESC LIMIT 1)"""
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
class KeptPoint:
    point: Point  # without its benchmark value (that depends on the range's first point)
    missing: tuple[str, ...]  # held symbols without a close
    benchmark: Decimal | None  # the benchmark's close
    until: float  # monotonic: reused before this instant only


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


class Closes:
    """Candle closes with the settled ones kept in this process (see the module's docstring).
    A kept answer includes "no candle": a range reaching before the stored history would
    otherwise probe every empty step on every request."""

    def __init__(self, db: Database, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.monotonic = monotonic
        self._kept: OrderedDict[tuple[str, timedelta, datetime], tuple[Decimal | None, float]] = OrderedDict()
        self.probed = 0  # pairs asked of PostgreSQL, for the benchmark

    async def at(self, wanted: Sequence[tuple[str, datetime]], step: timedelta, now: datetime) -> Prices:
        return (await self.kept_until(wanted, step, now))[0]

    async def kept_until(
        self, wanted: Sequence[tuple[str, datetime]], step: timedelta, now: datetime
    ) -> tuple[Prices, dict[datetime, float]]:
        """The closes, and per time the monotonic instant the first of its kept closes expires
        (a value derived from them is as good as they are until then)."""
        clock = self.monotonic()
        prices: Prices = {}
        probe: list[tuple[str, datetime]] = []
        expiry: dict[datetime, float] = {}
        for symbol, t in wanted:
            kept = self._kept.get((symbol, step, t))
            if kept is not None and kept[1] > clock:
                if kept[0] is not None:
                    prices[(symbol, t)] = kept[0]
                expiry[t] = min(expiry.get(t, kept[1]), kept[1])
            else:
                probe.append((symbol, t))
        fetched = await candle_closes(self.db, probe, step)
        self.probed += len(probe)
        settled = now - SETTLED_AFTER
        until = clock + CLOSES_KEPT_FOR
        for symbol, t in probe:
            if t <= settled:
                key = (symbol, step, t)
                self._kept.pop(key, None)  # re-inserted last: the oldest entries are dropped first
                self._kept[key] = (fetched.get((symbol, t)), until)
                expiry[t] = min(expiry.get(t, until), until)
        while len(self._kept) > MAX_KEPT_CLOSES:
            self._kept.popitem(last=False)
        prices.update(fetched)
        return prices, expiry

    def clear(self) -> None:
        self._kept.clear()


def held_at(timeline: Timeline, times: Sequence[datetime]) -> list[tuple[str, datetime]]:
    """(symbol, time) for every symbol held at each time."""
    held: dict[str, Decimal] = {}
    pairs: list[tuple[str, datetime]] = []
    index = 0
    for t in times:
        held, index = timeline.held(held, index, timeline.upto(t))
        pairs.extend((symbol, t) for symbol in held)
    return pairs


def valued_at(timeline: Timeline, times: Sequence[datetime], prices: Prices) -> list[tuple[Point, tuple[str, ...]]]:
    """Each time's point (the ledger's state after the transactions executed by then, from
    the timeline; holdings at `prices`) and the held symbols `prices` has no close for."""
    held: dict[str, Decimal] = {}
    out: list[tuple[Point, tuple[str, ...]]] = []
    index = 0
    with decimal.localcontext(prec=PRECISION):
        for t in times:
            held, index = timeline.held(held, index, timeline.upto(t))
            value: Decimal | None = timeline.cash[index - 1] if index else ZERO
            missing: list[str] = []
            for symbol, quantity in held.items():
                price = prices.get((symbol, t))
                if price is None:
                    value = None
                    missing.append(symbol)
                elif value is not None:
                    value += quantity * price
            out.append((Point(t, value, timeline.net_deposits[index - 1] if index else ZERO, None), tuple(missing)))
    return out


def gaps_of(valued: Sequence[tuple[Point, tuple[str, ...]]]) -> list[Gap]:
    """Runs of consecutive points where a held symbol had no close."""
    open_gaps: dict[str, Gap] = {}
    gaps: list[Gap] = []
    for point, missing in valued:
        for symbol in missing:
            gap = open_gaps.get(symbol)
            open_gaps[symbol] = Gap(symbol, gap.start if gap else point.at, point.at)
        for symbol in [s for s in open_gaps if s not in missing]:
            gaps.append(open_gaps.pop(symbol))
    gaps.extend(open_gaps.values())
    return gaps


def values_at(timeline: Timeline, times: Sequence[datetime], prices: Prices) -> tuple[list[Point], list[Gap]]:
    """The portfolio's value and net deposits at each time, and the gaps in its prices."""
    valued = valued_at(timeline, times, prices)
    return [point for point, _ in valued], gaps_of(valued)


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
    closes: Closes,
    timeline: Timeline,
    *,
    range_: str,
    now: datetime,
    created_at: datetime,
    kept: dict[tuple[timedelta, datetime], KeptPoint] | None = None,
) -> Performance:
    """With `kept` (the ledger version's own, `LedgerState.points`), a settled point valued
    before is reused while the closes it was valued at are: only the open steps and the
    points not valued yet read the timeline and the closes."""
    first = timeline.times[0] if timeline.times else created_at
    start, step = window(range_, now, min(first, created_at))
    times = grid(start, now, step)
    kept = {} if kept is None else kept
    clock = closes.monotonic()
    fresh = [t for t in times if (hit := kept.get((step, t))) is None or hit.until <= clock]
    wanted = set(held_at(timeline, fresh)) | {(BENCHMARK, t) for t in fresh}
    prices, expiry = await closes.kept_until(list(wanted), step, now)
    settled = now - SETTLED_AFTER
    valued_now: dict[datetime, KeptPoint] = {}
    for point, missing in valued_at(timeline, fresh, prices):
        t = point.at
        valued_now[t] = KeptPoint(point, missing, prices.get((BENCHMARK, t)), expiry.get(t, clock))
        if t <= settled:
            kept[(step, t)] = valued_now[t]
    if len(kept) > MAX_KEPT_POINTS:
        for key in [k for k, v in kept.items() if v.until <= clock]:
            del kept[key]
    chosen = [valued_now[t] if t in valued_now else kept[(step, t)] for t in times]
    valued = [(c.point, c.missing) for c in chosen]
    benchmark = {(BENCHMARK, c.point.at): c.benchmark for c in chosen if c.benchmark is not None}
    points, gaps = [point for point, _ in valued], gaps_of(valued)
    twr, drawdown = time_weighted(points)
    points, benchmark_return = with_benchmark(points, benchmark)
    bench_missing = [t for t in times if (BENCHMARK, t) not in benchmark]
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
