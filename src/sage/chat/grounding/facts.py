"""What an answer may state: typed (subject, field, value, time) records, whatever their source.

The chat context (prices, Fear & Greed, the portfolio) and every tool result of one answer
(tickers, candles, index history, calculations) add records here; the checker never looks
at where a figure came from, only at what it is about. Derived records (the 24 h move in
quote currency, the price 24 h ago, a candle window's range) are marked `derived` so a
correct figure computed from the data is not flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from sage.portfolio.service import PortfolioSummary


class SubjectKind(StrEnum):
    SYMBOL = "symbol"
    FEAR_GREED = "fear_greed"
    PORTFOLIO = "portfolio"
    POSITION = "position"
    CALCULATION = "calculation"
    CLOCK = "clock"


@dataclass(frozen=True, order=True)
class Subject:
    kind: SubjectKind
    key: str = ""  # BASE/QUOTE for symbols and positions, the expression for calculations

    @classmethod
    def symbol(cls, symbol: str) -> Subject:
        return cls(SubjectKind.SYMBOL, symbol)

    @classmethod
    def position(cls, symbol: str) -> Subject:
        return cls(SubjectKind.POSITION, symbol)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.key}" if self.key else self.kind.value


FEAR_GREED = Subject(SubjectKind.FEAR_GREED)
PORTFOLIO = Subject(SubjectKind.PORTFOLIO)
CLOCK = Subject(SubjectKind.CLOCK)


class Field(StrEnum):
    PRICE = "price"
    CHANGE_PCT = "change_pct"
    CHANGE_ABS = "change_abs"
    OPEN = "open"
    HIGH = "high"
    LOW = "low"
    CLOSE = "close"
    VOLUME = "volume"
    RANGE = "range"  # high minus low over a window
    RELATIVE_PCT = "relative_pct"  # how far the price is from its high or low, in percent
    GAP_PCT = "gap_pct"  # percentage points between two coins' moves ("SOL outpaced BTC by 2.9 points")
    VALUE = "value"
    CASH = "cash"  # a portfolio's cash, or the amount a deposit or withdrawal moved
    COST = "cost"
    AVERAGE_COST = "average_cost"
    QUANTITY = "quantity"
    PNL = "pnl"
    PNL_PCT = "pnl_pct"
    WEIGHT_PCT = "weight_pct"
    INDEX_VALUE = "index_value"
    CLASSIFICATION = "classification"
    TIME = "time"
    RESULT = "result"
    RETURN_PCT = "return_pct"  # time-weighted return over a range (a portfolio's, or holding the benchmark)
    DRAWDOWN_PCT = "drawdown_pct"  # largest fall from a peak over a range, a positive magnitude


PERCENT_FIELDS = frozenset(
    {
        Field.CHANGE_PCT,
        Field.PNL_PCT,
        Field.WEIGHT_PCT,
        Field.RELATIVE_PCT,
        Field.GAP_PCT,
        Field.RETURN_PCT,
        Field.DRAWDOWN_PCT,
    }
)
SIGNED_FIELDS = frozenset(
    {Field.CHANGE_PCT, Field.CHANGE_ABS, Field.PNL, Field.PNL_PCT, Field.RESULT, Field.RETURN_PCT}
)


@dataclass(frozen=True)
class Fact:
    subject: Subject
    field: Field
    value: Decimal | str  # str only for classifications
    time: datetime | None = None
    source: str = "context"
    derived: bool = False

    @property
    def number(self) -> Decimal | None:
        return self.value if isinstance(self.value, Decimal) else None

    @property
    def label(self) -> str:
        return f"{self.subject} {self.field.value}"


class CandleLike(Protocol):
    @property
    def start(self) -> datetime: ...
    @property
    def open(self) -> Decimal: ...
    @property
    def high(self) -> Decimal: ...
    @property
    def low(self) -> Decimal: ...
    @property
    def close(self) -> Decimal: ...
    @property
    def volume(self) -> Decimal: ...


class Moment(Protocol):
    """A written date or time (sage.chat.grounding.dates.DateMention)."""

    def __hash__(self) -> int: ...
    def matches(self, moment: datetime, /) -> bool: ...


class FearGreedLike(Protocol):
    @property
    def value(self) -> int: ...
    @property
    def classification(self) -> str: ...
    @property
    def as_of(self) -> datetime: ...


def _key(subject: Subject) -> tuple[str, str]:
    """Symbol and position facts of one coin are looked up together."""
    if subject.kind in (SubjectKind.SYMBOL, SubjectKind.POSITION):
        return ("coin", subject.key)
    return (subject.kind.value, subject.key)


def _dec(value: Decimal | int | float | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class Facts:
    """The facts of one answer; `add_*` are what the context builder and tool results call."""

    def __init__(self, facts: Iterable[Fact] = (), *, now: datetime | None = None) -> None:
        self._facts: list[Fact] = list(facts)
        self._index: dict[tuple[str, str], list[Fact]] | None = None
        self._current: Facts | None = None  # views rebuilt after the next add()
        self._at: dict[tuple[Moment, ...], Facts] = {}
        if now is not None:
            self.add(CLOCK, Field.TIME, now.isoformat(), time=now)

    def __iter__(self) -> Iterator[Fact]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def copy(self) -> Facts:
        return Facts(self._facts)

    def add(
        self,
        subject: Subject,
        field: Field,
        value: Decimal | int | str,
        *,
        time: datetime | None = None,
        source: str = "context",
        derived: bool = False,
    ) -> None:
        stored: Decimal | str = (
            value if isinstance(value, str) and field in (Field.CLASSIFICATION, Field.TIME) else _dec(value)
        )
        self._facts.append(Fact(subject, field, stored, time, source, derived))
        self._index = self._current = None
        self._at = {}

    # -- builders ------------------------------------------------------------------------------------
    def add_ticker(
        self,
        symbol: str,
        *,
        price: Decimal,
        change_pct: Decimal | None = None,
        change_abs: Decimal | None = None,
        high: Decimal | None = None,
        low: Decimal | None = None,
        volume: Decimal | None = None,
        as_of: datetime | None = None,
        source: str = "get_price",
    ) -> None:
        """A consolidated price with its 24 h figures; the 24 h move and opening price are derived."""
        subject = Subject.symbol(symbol)
        self.add(subject, Field.PRICE, price, time=as_of, source=source)
        for field, value in ((Field.HIGH, high), (Field.LOW, low), (Field.VOLUME, volume)):
            if value is not None:
                self.add(subject, field, value, time=as_of, source=source)
        if high is not None and low is not None:
            self.add(subject, Field.RANGE, high - low, time=as_of, source=source, derived=True)
        for extreme in (high, low):
            if extreme:  # "1% below its 24h high"
                self.add(
                    subject, Field.RELATIVE_PCT, (price / extreme - 1) * 100, time=as_of, source=source, derived=True
                )
        if change_pct is not None:
            self.add(subject, Field.CHANGE_PCT, change_pct, time=as_of, source=source)
            if change_pct > -100:
                opening = price / (1 + change_pct / 100)
                opened_at = as_of - timedelta(hours=24) if as_of is not None else None
                self.add(subject, Field.OPEN, opening, time=opened_at, source=source, derived=True)
                if change_abs is None:
                    self.add(subject, Field.CHANGE_ABS, price - opening, time=as_of, source=source, derived=True)
        if change_abs is not None:
            self.add(subject, Field.CHANGE_ABS, change_abs, time=as_of, source=source)

    def add_candles(self, symbol: str, candles: Sequence[CandleLike], *, source: str = "get_candles") -> None:
        """OHLCV per bar (timed at the bar's start) and the window's own open/high/low/close/change/volume."""
        subject = Subject.symbol(symbol)
        bars = sorted(candles, key=lambda c: c.start)
        for bar in bars:
            for field, value in (
                (Field.OPEN, bar.open),
                (Field.HIGH, bar.high),
                (Field.LOW, bar.low),
                (Field.CLOSE, bar.close),
                (Field.VOLUME, bar.volume),
            ):
                self.add(subject, field, value, time=bar.start, source=source)
        if len(bars) < 2:
            return
        first, last = bars[0], bars[-1]
        high = max(bars, key=lambda c: c.high)
        low = min(bars, key=lambda c: c.low)
        window = (
            (Field.HIGH, high.high, high.start),
            (Field.LOW, low.low, low.start),
            (Field.VOLUME, sum((c.volume for c in bars), Decimal(0)), first.start),
            (Field.CHANGE_ABS, last.close - first.open, last.start),
        )
        for field, value, when in window:
            self.add(subject, field, value, time=when, source=source, derived=True)
        if first.open:
            change = (last.close / first.open - 1) * 100
            self.add(subject, Field.CHANGE_PCT, change, time=last.start, source=source, derived=True)
        self.add(subject, Field.RANGE, high.high - low.low, time=last.start, source=source, derived=True)

    def add_fear_greed(
        self,
        value: int,
        classification: str,
        *,
        as_of: datetime | None = None,
        history: Sequence[FearGreedLike] = (),
        source: str = "get_fear_greed",
    ) -> None:
        self.add(FEAR_GREED, Field.INDEX_VALUE, value, time=as_of, source=source)
        self.add(FEAR_GREED, Field.CLASSIFICATION, classification, time=as_of, source=source)
        for reading in history:
            self.add(FEAR_GREED, Field.INDEX_VALUE, reading.value, time=reading.as_of, source=source)
            self.add(FEAR_GREED, Field.CLASSIFICATION, reading.classification, time=reading.as_of, source=source)

    def add_portfolio(self, summary: PortfolioSummary, *, source: str = "get_portfolio") -> None:
        at = summary.as_of
        for row in summary.positions:
            subject = Subject.position(row.symbol)
            self.add(subject, Field.QUANTITY, row.quantity, time=at, source=source)
            self.add(subject, Field.AVERAGE_COST, row.average_cost, time=at, source=source)
            self.add(subject, Field.COST, row.cost, time=at, source=source)
            for field, value in (
                (Field.PRICE, row.price),
                (Field.VALUE, row.value),
                (Field.PNL, row.pnl),
                (Field.PNL_PCT, row.pnl_pct),
                (Field.WEIGHT_PCT, row.weight_pct),
            ):
                if value is not None:
                    self.add(subject, field, value, time=at, source=source)  # all valued at one moment
        self.add(PORTFOLIO, Field.VALUE, summary.total_value, time=at, source=source)
        self.add(PORTFOLIO, Field.COST, summary.total_cost, time=at, source=source)
        self.add(PORTFOLIO, Field.PNL, summary.total_pnl, time=at, source=source)
        if summary.total_pnl_pct is not None:
            self.add(PORTFOLIO, Field.PNL_PCT, summary.total_pnl_pct, time=at, source=source)
        # the ledger's side: cash, cash plus holdings, realized P&L and the return on net deposits
        self.add(PORTFOLIO, Field.CASH, summary.cash, time=at, source=source)
        self.add(PORTFOLIO, Field.VALUE, summary.equity, time=at, source=source)
        self.add(PORTFOLIO, Field.PNL, summary.realized_pnl, time=at, source=source)
        self.add(PORTFOLIO, Field.PNL, summary.total_return, time=at, source=source)
        if summary.total_return_pct is not None:
            self.add(PORTFOLIO, Field.PNL_PCT, summary.total_return_pct, time=at, source=source)

    def add_performance(
        self,
        *,
        return_pct: Decimal | None,
        drawdown_pct: Decimal | None,
        benchmark_symbol: str,
        benchmark_return_pct: Decimal | None,
        source: str = "get_performance",
    ) -> None:
        """A range's time-weighted return and max drawdown, and the return of holding the
        benchmark over the same points. Untimed: they describe a range, not a moment, and must
        not displace the live figures a present-tense sentence is checked against."""
        if return_pct is not None:
            self.add(PORTFOLIO, Field.RETURN_PCT, return_pct, source=source)
        if drawdown_pct is not None:
            self.add(PORTFOLIO, Field.DRAWDOWN_PCT, drawdown_pct, source=source)
        if benchmark_return_pct is not None:
            self.add(Subject.symbol(benchmark_symbol), Field.RETURN_PCT, benchmark_return_pct, source=source)

    def add_calculation(self, expression: str, result: Decimal, *, source: str = "calculate") -> None:
        """A `calculate` result: the model computed it with Sage's evaluator, so stating it is grounded."""
        self.add(Subject(SubjectKind.CALCULATION, expression), Field.RESULT, result, source=source)

    # -- queries -------------------------------------------------------------------------------------
    def symbols(self) -> list[str]:
        """Every symbol the facts are about (market data and positions), in first-seen order."""
        seen: dict[str, None] = {}
        for fact in self._facts:
            if fact.subject.kind in (SubjectKind.SYMBOL, SubjectKind.POSITION):
                seen.setdefault(fact.subject.key, None)
        return list(seen)

    def about(self, subject: Subject) -> list[Fact]:
        """Facts of `subject`; a symbol's facts include the user's position in it."""
        if self._index is None:
            index: dict[tuple[str, str], list[Fact]] = {}
            for fact in self._facts:
                index.setdefault(_key(fact.subject), []).append(fact)
            self._index = index
        return list(self._index.get(_key(subject), ()))

    def calculations(self) -> list[Fact]:
        return [f for f in self._facts if f.subject.kind is SubjectKind.CALCULATION]

    def at(self, moments: Sequence[Moment]) -> Facts:
        """Untimed facts, and the timed ones any of `moments` accepts (all of them if none does);
        derived facts come along with the moment they share with a real one."""
        key = tuple(moments)
        if (cached := self._at.get(key)) is not None:
            return cached
        times = {f.time for f in self._facts if f.time is not None and not f.derived}
        accepted = {t for t in times if any(m.matches(t) for m in moments)}
        found = self if not accepted else Facts(f for f in self._facts if f.time is None or f.time in accepted)
        self._at[key] = found
        return found

    def current(self) -> Facts:
        """Untimed facts and each subject's latest ones: what a present-tense sentence states
        ("BTC is at ..." means the live price, not a close from three days ago)."""
        if self._current is not None:
            return self._current
        latest: dict[Subject, datetime] = {}
        for fact in self._facts:
            if fact.time is not None and not fact.derived:
                latest[fact.subject] = max(latest.get(fact.subject, fact.time), fact.time)
        self._current = Facts(
            f for f in self._facts if f.time is None or f.subject not in latest or f.time >= latest[f.subject]
        )
        return self._current

    def timed(self) -> list[Fact]:
        return [f for f in self._facts if f.time is not None]
