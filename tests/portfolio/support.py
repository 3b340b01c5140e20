"""Helpers for portfolio tests (and the chat tests that value a portfolio)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from sage.market.catalog import ListedSymbols, SymbolCatalog
from sage.portfolio.service import PortfolioService
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
