"""Helpers for portfolio tests (and the chat tests that value a portfolio)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text

from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.portfolio.ledger import Entry, Ledger, LedgerError
from sage.portfolio.performance import (
    Gap,
    Performance,
    Point,
    Prices,
    candle_closes,
    gaps_of,
    grid,
    series,
    value,
    wanted,
    window,
)
from sage.portfolio.service import PortfolioService
from sage.portfolio.state import Timeline
from sage.store.db import Database
from sage.store.market_tables import CandleRow
from tests.chat.support import FakeMarket


@dataclass(frozen=True)
class Position:
    """A holding as `sage.portfolio.valuation.summarize` reads it."""

    symbol: str
    quantity: Decimal
    average_cost: Decimal
    user_id: uuid.UUID | None = None


async def default_portfolio(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    listed = await client.get("/api/v1/portfolios", headers=headers)
    assert listed.status_code == 200, listed.text
    return next(p["id"] for p in listed.json() if p["is_default"])


async def book(client: httpx.AsyncClient, headers: dict[str, str], portfolio_id: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/portfolios/{portfolio_id}/transactions",
        json={k: str(v) if isinstance(v, Decimal) else v for k, v in body.items()},
        headers=headers,
    )


async def summary(client: httpx.AsyncClient, headers: dict[str, str], portfolio_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/portfolios/{portfolio_id}/summary", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def add_closes(db: Database, symbol: str, closes: dict[datetime, Decimal], exchange: str = "binance") -> None:
    """One-minute candles whose close at `t` is the given price (the bar started a minute before)."""
    async with db.session() as session:
        for at, price in closes.items():
            session.add(
                CandleRow(
                    exchange=exchange,
                    symbol=symbol,
                    start=at - timedelta(minutes=1),
                    open=price,
                    high=price,
                    low=price,
                    close=price,
                    volume=Decimal(1),
                    ticks=1,
                )
            )
        await session.commit()


def portfolio_service(db: Database, now: datetime | None = None) -> PortfolioService:
    """A PortfolioService over `db` with the chat tests' fixed prices and empty in-memory caches
    (what a new worker process is); its clock is `now` when given, else the wall clock."""
    market = FakeMarket()
    return PortfolioService(
        db,
        market,
        ListedSymbols(SymbolCatalog(db, configured=list(market.configured), exchanges=["binance"])),
        fee_rate=Decimal("0.001"),
        starting_cash=Decimal(10000),
        clock=(lambda: now) if now is not None else (lambda: datetime.now(UTC)),
    )


def values_at(timeline: Timeline, times: list[datetime], prices: Prices) -> tuple[list[Point], list[Gap]]:
    """The points of `times` valued from the timeline at `prices`, and their gaps."""
    valued = value(times, timeline.states_at(times), prices)
    return [v.point for v in valued], gaps_of(valued)


async def series_of(db: Database, timeline: Timeline, range_: str, now: datetime, first: datetime) -> Performance:
    """A range's series valued at every point from the timeline and the stored candles (no
    stored points: what the service does for points nobody valued yet)."""
    start, step = window(range_, now, first)
    times = grid(start, now, step)
    states = timeline.states_at(times)
    closes = await candle_closes(db, wanted(times, states), step)
    return series(range_, start, now, step, value(times, states, closes.prices))


async def cold_performance(
    db: Database, user_id: uuid.UUID, portfolio_id: uuid.UUID, range_: str, now: datetime
) -> Performance | None:
    """The series computed from nothing: no stored point, no cached state (a new process
    on a database that never stored a point); the stored points are put back after."""
    async with db.session() as session:
        kept = (await session.execute(text("SELECT * FROM portfolio_points"))).mappings().all()
        await session.execute(text("DELETE FROM portfolio_points"))
        await session.commit()
    try:
        return await portfolio_service(db, now).performance(user_id, portfolio_id, range_)
    finally:
        async with db.session() as session:
            await session.execute(text("DELETE FROM portfolio_points"))
            for row in kept:
                await session.execute(
                    text(
                        "INSERT INTO portfolio_points (portfolio_id, step_seconds, at, value, net_deposits, benchmark, missing)"
                        " VALUES (:portfolio_id, :step_seconds, :at, :value, :net_deposits, :benchmark, :missing)"
                    ),
                    dict(row),
                )
            await session.commit()


def valid_history(plan: list[tuple[str, str, Decimal, Decimal, Decimal, int]], start: datetime) -> list[Entry]:
    """The plan's transactions (kind, symbol, quantity, price, fee, hours after the previous
    one) that the ledger accepts, each applied in turn (a sell of a symbol not held, an
    overdraft: skipped), starting with a deposit at `start`."""
    ledger = Ledger()
    at = start
    entries = [Entry("deposit", None, Decimal(5000), None, Decimal(0), at, seq=0)]
    ledger.apply(entries[0])
    for n, (kind, symbol, quantity, price, fee, hours) in enumerate(plan, start=1):
        at += timedelta(hours=hours)
        if kind in ("deposit", "withdraw"):
            entry = Entry(kind, None, quantity * 10, None, Decimal(0), at, seq=n)
        else:
            held = ledger.holdings.get(symbol)
            if kind == "sell" and held is not None and quantity > held.quantity:
                quantity = held.quantity  # sometimes closes the position exactly
            entry = Entry(kind, symbol, quantity, price, fee, at, seq=n)
        try:
            ledger.apply(entry)
        except LedgerError:
            continue
        entries.append(entry)
    return entries


async def deposit_from_outside(db: Database, portfolio_id: uuid.UUID, amount: int, at: datetime) -> None:
    """A deposit inserted by SQL, as psql or a COPY would: no service sees it."""
    async with db.session() as session:
        await session.execute(
            text(
                "INSERT INTO portfolio_transactions (id, portfolio_id, kind, quantity, fee, executed_at)"
                " VALUES (:id, :p, 'deposit', :amount, 0, :at)"
            ),
            {"id": uuid.uuid4(), "p": portfolio_id, "amount": amount, "at": at},
        )
        await session.commit()


async def ledger_version(db: Database, portfolio_id: uuid.UUID) -> int:
    async with db.session() as session:
        found = await session.scalar(text("SELECT ledger_version FROM portfolios WHERE id = :p"), {"p": portfolio_id})
        return int(found)
