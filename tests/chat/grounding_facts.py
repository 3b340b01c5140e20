"""The facts the grounding corpus and unit tests check answers against (context + tool results)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sage.chat.grounding import Facts
from sage.portfolio.service import summarize
from tests.portfolio.support import Position as PortfolioPosition

NOW = datetime(2026, 11, 22, 9, 59, 58, tzinfo=UTC)


@dataclass(frozen=True)
class _Quote:
    symbol: str
    price: Decimal
    change_pct_24h: Decimal | None
    as_of: datetime = NOW
    stale: bool = False
    diverged: bool = False


@dataclass(frozen=True)
class Bar:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class Reading:
    value: int
    classification: str
    as_of: datetime


QUOTES = {
    "BTC/USDT": _Quote("BTC/USDT", Decimal("97250.50"), Decimal("2.31")),
    "ETH/USDT": _Quote("ETH/USDT", Decimal("3413.28"), Decimal("-1.25")),
    "SOL/USDT": _Quote("SOL/USDT", Decimal("187.65"), Decimal("5.20")),
}


def _day(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


def corpus_facts() -> Facts:
    facts = Facts(now=NOW)
    for quote in QUOTES.values():
        facts.add_ticker(quote.symbol, price=quote.price, change_pct=quote.change_pct_24h, as_of=NOW, source="context")
    # what a get_price tool call adds: the 24 h high, low and volume
    facts.add_ticker(
        "BTC/USDT",
        price=Decimal("97250.50"),
        high=Decimal("98100"),
        low=Decimal("94800"),
        volume=Decimal("12345.6"),
        as_of=NOW,
    )
    facts.add_fear_greed(
        72,
        "Greed",
        as_of=NOW,
        history=[
            Reading(65, "Greed", _day(21)),
            Reading(40, "Fear", _day(20)),
            Reading(20, "Extreme Fear", _day(15)),
        ],
    )
    positions = [
        PortfolioPosition(symbol="BTC/USDT", quantity=Decimal("0.5"), average_cost=Decimal("60000")),
        PortfolioPosition(symbol="ETH/USDT", quantity=Decimal("2"), average_cost=Decimal("4000")),
    ]
    facts.add_portfolio(summarize(positions, dict(QUOTES), NOW))
    facts.add_candles(
        "BTC/USDT",
        [
            Bar(_day(19), Decimal(93000), Decimal(94500), Decimal(92100), Decimal(94000), Decimal(20000)),
            Bar(_day(20), Decimal(94000), Decimal(99400), Decimal(93800), Decimal(96500), Decimal(25000)),
            Bar(_day(21), Decimal(96500), Decimal(97800), Decimal(95200), Decimal(95100), Decimal(18000)),
        ],
    )
    facts.add_calculation("0.5 * 97250.50 / 2", Decimal("24312.625"))
    facts.add_calculation("3413.28 * 3", Decimal("10239.84"))
    return facts
