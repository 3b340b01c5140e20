"""Shadow portfolio performance for the daily business summary.

Aggregates only, no identities: how many portfolios, and the median, best and worst return
over the summarized UTC day. Returns come from the portfolio domain's `day_returns`, which
values each portfolio from the candles stored during that day rather than from the live
feed, so the first summary after a start-up does not race the price feed; portfolios that
could not be valued are counted and said so in one honest line.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol

FIELD = "Shadow portfolios"


class DayReturns(Protocol):
    @property
    def portfolios(self) -> int: ...

    @property
    def returns(self) -> Sequence[Decimal]: ...

    @property
    def unvalued(self) -> int: ...


class ShadowPortfolios(Protocol):
    """What the summary needs from the portfolio domain (sage.portfolio.service.PortfolioService)."""

    async def day_returns(self, day: date) -> DayReturns: ...


def pct(value: Decimal) -> str:
    """A return for people: sign, two decimals, no 18-digit tails."""
    return f"{value:+,.2f} %"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def performance_fields(result: DayReturns) -> dict[str, str]:
    if result.portfolios == 0:
        return {FIELD: "none yet"}
    returns = sorted(result.returns)
    if not returns:
        return {
            FIELD: f"{_count(result.portfolios, 'portfolio')}; none could be valued over the day"
            " (no holdings at its start, or no prices recorded for them)"
        }
    median = Decimal(statistics.median(returns))
    line = f"{_count(len(returns), 'portfolio')} valued · median return {pct(median)} over the day"
    if result.unvalued:
        line += f" ({result.unvalued:,} more without holdings or recorded prices, left out)"
    return {FIELD: line, "Best / worst portfolio": f"{pct(returns[-1])} / {pct(returns[0])}"}


def portfolio_source(portfolios: ShadowPortfolios) -> Callable[[date], Awaitable[dict[str, str]]]:
    """A DailySummary source: the day's aggregate shadow-portfolio performance."""

    async def source(day: date) -> dict[str, str]:
        return performance_fields(await portfolios.day_returns(day))

    return source
