"""Shadow portfolio performance in the daily summary, from the real tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sage.observability.portfolio_summary import portfolio_performance
from sage.store.chat_tables import PortfolioPosition
from sage.store.db import Database, create_engine
from sage.store.user_tables import User


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal
    change_pct_24h: Decimal | None = None
    as_of: datetime = datetime(2025, 3, 1, tzinfo=UTC)
    stale: bool = False
    diverged: bool = False


class Market:
    def __init__(self, prices: dict[str, str]) -> None:
        self.prices = {s: Decimal(p) for s, p in prices.items()}

    async def consolidated(self, symbols=None):
        return [Quote(s, self.prices[s]) for s in symbols or self.prices if s in self.prices]


async def _db_with(settings, database_url, holdings: list[list[tuple[str, str, str]]]) -> Database:
    db = Database(create_engine(settings, database_url))
    async with db.session() as session:
        for positions in holdings:
            user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
            session.add(user)
            await session.flush()
            for symbol, quantity, cost in positions:
                session.add(
                    PortfolioPosition(
                        user_id=user.id, symbol=symbol, quantity=Decimal(quantity), average_cost=Decimal(cost)
                    )
                )
        await session.commit()
    return db


async def test_the_summary_reports_count_combined_pnl_and_the_extremes(settings, database_url):
    db = await _db_with(
        settings,
        database_url,
        [
            [("BTC/USDT", "1", "50000")],  # +10 %
            [("ETH/USDT", "10", "2000"), ("BTC/USDT", "0.1", "60000")],  # ETH -10 %, BTC -8.33 %
        ],
    )
    try:
        fields = await portfolio_performance(db, Market({"BTC/USDT": "55000", "ETH/USDT": "1800"}))
    finally:
        await db.dispose()
    # cost 50000 + 20000 + 6000 = 76000; value 55000 + 18000 + 5500 = 78500; P&L +3.29 %
    assert fields["Shadow portfolios"] == "2 portfolios · combined P&L +3.29 % on 76.0K cost"
    assert fields["Best / worst portfolio"] == "+10.00 % / -9.62 %"


async def test_no_portfolios_is_said_plainly(settings, database_url):
    db = Database(create_engine(settings, database_url))
    try:
        assert await portfolio_performance(db, Market({})) == {"Shadow portfolios": "none yet"}
    finally:
        await db.dispose()


async def test_portfolios_without_prices_are_counted_but_not_valued(settings, database_url):
    db = await _db_with(settings, database_url, [[("SOL/USDT", "3", "100")]])
    try:
        fields = await portfolio_performance(db, Market({}))
    finally:
        await db.dispose()
    assert fields == {"Shadow portfolios": "1 portfolios (no prices to value them)"}
