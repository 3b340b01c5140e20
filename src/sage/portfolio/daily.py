"""Every shadow portfolio's return over one UTC day, for the business channel's summary.

Values come from the stored candles at the day's start and end (the last close in the hour
before each), not from the live feed, so a summary sent right after a restart does not race
the price feed: the day's prices were recorded while it happened. A portfolio that held a
symbol without a recorded price, or held nothing at the day's start, has no return for the
day and is counted apart. Deposits and withdrawals during the day are not performance.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from sage.portfolio.ledger import Entry
from sage.portfolio.performance import HOUR, candle_closes, time_weighted, value
from sage.portfolio.state import derive
from sage.store.db import Database
from sage.store.portfolio_tables import Portfolio, PortfolioTransaction


@dataclass(frozen=True)
class DayReturns:
    portfolios: int  # portfolios that existed by the end of the day
    returns: tuple[Decimal, ...]  # percent, one per portfolio valued at both ends
    unvalued: int  # no value at the start, or a holding without a recorded price


async def day_returns(db: Database, day: date) -> DayReturns:
    start = datetime.combine(day, time(0), UTC)
    end = start + timedelta(days=1)
    async with db.session() as session:
        count = await session.scalar(select(func.count()).select_from(Portfolio).where(Portfolio.created_at < end))
        rows = await session.execute(
            select(
                PortfolioTransaction.portfolio_id,
                PortfolioTransaction.kind,
                PortfolioTransaction.symbol,
                PortfolioTransaction.quantity,
                PortfolioTransaction.price,
                PortfolioTransaction.fee,
                PortfolioTransaction.executed_at,
            )
            .where(PortfolioTransaction.executed_at <= end)
            .order_by(PortfolioTransaction.portfolio_id, PortfolioTransaction.executed_at, PortfolioTransaction.seq)
        )
        by_portfolio: dict[uuid.UUID, list[Entry]] = defaultdict(list)
        for portfolio_id, kind, symbol, quantity, price, fee, executed_at in rows:
            by_portfolio[portfolio_id].append(
                Entry(kind, symbol, quantity, price, fee, executed_at)
            )  # rows come in (time, seq) order
    symbols = sorted({e.symbol for entries in by_portfolio.values() for e in entries if e.symbol is not None})
    closes = await candle_closes(db, [(s, t) for s in symbols for t in (start, end)], HOUR)
    returns: list[Decimal] = []
    for entries in by_portfolio.values():
        valued = value([start, end], derive(entries).timeline.states_at([start, end]), closes.prices)
        twr, _ = time_weighted([v.point for v in valued])
        if twr is not None:
            returns.append(twr)
    portfolios = int(count or 0)
    return DayReturns(portfolios=portfolios, returns=tuple(returns), unvalued=portfolios - len(returns))
