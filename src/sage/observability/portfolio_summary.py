"""Shadow portfolio performance for the daily business summary.

Every user's paper positions valued at the current consolidated prices, with the portfolio
domain's own valuation (`sage.portfolio.service.summarize`): how many portfolios, their
combined P&L, and the best and worst portfolio. Positions without a price are left out of
the figures (as the portfolio summary itself does).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from sage.market.reader import MarketReader
from sage.store.db import Database

log = logging.getLogger(__name__)

FIELD = "Shadow portfolios"


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+.2f} %"


def _money(value: Decimal) -> str:
    amount = float(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= size:
            return f"{amount / size:,.1f}{suffix}"
    return f"{amount:,.2f}"


async def portfolio_performance(db: Database, market: MarketReader) -> dict[str, str]:
    from sage.portfolio.service import summarize
    from sage.store.chat_tables import PortfolioPosition

    async with db.session() as session:
        positions = list((await session.execute(select(PortfolioPosition))).scalars())
    if not positions:
        return {FIELD: "none yet"}
    by_user: dict[Any, list[Any]] = defaultdict(list)
    for position in positions:
        by_user[position.user_id].append(position)
    quotes: dict[str, Any] = {}
    try:
        for quote in await market.consolidated(sorted({p.symbol for p in positions})):
            quotes[quote.symbol] = quote
    except Exception as exc:
        log.warning("portfolio prices unavailable for the summary", extra={"error": type(exc).__name__})
    now = datetime.now(UTC)
    summaries = [summarize(held, quotes, now) for held in by_user.values()]
    cost = sum((s.total_cost for s in summaries), Decimal(0))
    pnl = sum((s.total_pnl for s in summaries), Decimal(0))
    returns = [s.total_pnl_pct for s in summaries if s.total_pnl_pct is not None]
    if not returns:
        return {FIELD: f"{len(summaries):,} portfolios (no prices to value them)"}
    combined = pnl / cost * 100 if cost else None
    return {
        FIELD: f"{len(summaries):,} portfolios · combined P&L {_pct(combined)} on {_money(cost)} cost",
        "Best / worst portfolio": f"{_pct(max(returns))} / {_pct(min(returns))}",
    }


def portfolio_source(db: Database, market: MarketReader) -> Callable[[date], Awaitable[dict[str, str]]]:
    """A DailySummary source valuing every shadow portfolio at the market's prices."""

    async def source(day: date) -> dict[str, str]:
        return await portfolio_performance(db, market)

    return source
