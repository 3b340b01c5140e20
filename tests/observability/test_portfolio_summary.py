"""Shadow portfolio performance in the daily summary: aggregates from the real tables and candles."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.observability.portfolio_summary import performance_fields, portfolio_source
from sage.portfolio.daily import DayReturns
from sage.portfolio.service import PortfolioService
from sage.store.db import Database, create_engine
from sage.store.portfolio_tables import Portfolio, PortfolioTransaction
from sage.store.user_tables import User
from tests.chat.support import FakeMarket
from tests.portfolio.support import add_closes

DAY = date(2026, 3, 1)
START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
D = Decimal


@pytest.fixture
async def db(settings, database_url) -> AsyncIterator[Database]:
    database = Database(create_engine(settings, database_url))
    yield database
    await database.dispose()


async def _portfolio(
    db: Database, cash: str, trades: list[tuple[str, str, str]], *, deposit_during_day: str = "0"
) -> None:
    """A user with one portfolio: `cash` deposited and `trades` bought the day before."""
    async with db.session() as session:
        user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        portfolio = Portfolio(
            user_id=user.id,
            name="Default",
            is_default=True,
            starting_cash=D(cash),
            created_at=START - timedelta(days=1),
        )
        session.add(portfolio)
        await session.flush()
        before = START - timedelta(hours=12)
        session.add(
            PortfolioTransaction(
                portfolio_id=portfolio.id, kind="deposit", quantity=D(cash), fee=D(0), executed_at=before
            )
        )
        for symbol, quantity, price in trades:
            session.add(
                PortfolioTransaction(
                    portfolio_id=portfolio.id,
                    kind="buy",
                    symbol=symbol,
                    quantity=D(quantity),
                    price=D(price),
                    fee=D(0),
                    executed_at=before,
                )
            )
        if D(deposit_during_day):
            session.add(
                PortfolioTransaction(
                    portfolio_id=portfolio.id,
                    kind="deposit",
                    quantity=D(deposit_during_day),
                    fee=D(0),
                    executed_at=START + timedelta(hours=6),
                )
            )
        await session.commit()


def _service(db: Database, market: FakeMarket) -> PortfolioService:
    return PortfolioService(
        db,
        market,
        ListedSymbols(SymbolCatalog(db, configured=["BTC/USDT"], exchanges=["binance"])),
        fee_rate=D("0.001"),
        starting_cash=D(0),
    )


async def test_the_summary_reports_count_median_and_extremes_from_the_days_candles(db):
    await add_closes(db, "BTC/USDT", {START: D(50000), END: D(55000)})
    await add_closes(db, "ETH/USDT", {START: D(2000), END: D(1800)})
    await _portfolio(db, "50000", [("BTC/USDT", "1", "50000")])  # +10 %
    await _portfolio(db, "20000", [("ETH/USDT", "10", "2000")])  # -10 %
    await _portfolio(db, "1000", [], deposit_during_day="500")  # cash only: 0 %, the deposit is no gain
    await _portfolio(db, "300", [("SOL/USDT", "3", "100")])  # no SOL candles: not valued
    # the live feed is down (as right after a start-up): the day's stored candles are enough
    source = portfolio_source(_service(db, FakeMarket(fail=True)))

    fields = await source(DAY)

    assert fields == {
        "Shadow portfolios": "3 portfolios valued · median return +0.00 % over the day"
        " (1 more without holdings or recorded prices, left out)",
        "Best / worst portfolio": "+10.00 % / -10.00 %",
    }


async def test_no_portfolios_is_said_plainly(db):
    assert await portfolio_source(_service(db, FakeMarket()))(DAY) == {"Shadow portfolios": "none yet"}


async def test_portfolios_without_recorded_prices_are_counted_with_an_honest_line(db):
    await _portfolio(db, "300", [("SOL/USDT", "3", "100")])
    fields = await portfolio_source(_service(db, FakeMarket()))(DAY)
    assert fields == {
        "Shadow portfolios": "1 portfolio; none could be valued over the day"
        " (no holdings at its start, or no prices recorded for them)"
    }


def test_returns_are_formatted_for_people():
    fields = performance_fields(
        DayReturns(portfolios=2, returns=(D("12345.678901234567890123"), D("-0.004999")), unvalued=0)
    )
    assert fields["Best / worst portfolio"] == "+12,345.68 % / -0.00 %"
    assert "median return +6,172.84 %" in fields["Shadow portfolios"]
