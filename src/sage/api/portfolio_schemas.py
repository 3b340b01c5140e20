"""Request and response bodies of the portfolio routers. Amounts are decimal strings in
responses, so no precision is lost to floating point."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sage.api.schemas import SYMBOL_PATTERN, NonNegativeDecimal, PositiveDecimal, RequestModel
from sage.portfolio.valuation import PortfolioSummary

# The API's one decimal input rule (strings or whole numbers, bounded; no floats with fractions).
Amount = PositiveDecimal
Fee = NonNegativeDecimal


class PortfolioIn(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    base_currency: str = Field(default="USDT", pattern=r"^[A-Z0-9]{2,20}$")
    starting_cash: NonNegativeDecimal | None = Field(default=None, description="Default: SAGE_PORTFOLIO_STARTING_CASH")
    is_default: bool = False


class PortfolioPatch(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    is_default: Literal[True] | None = Field(default=None, description="true makes this the default portfolio")


class PortfolioOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    base_currency: str
    starting_cash: Decimal
    is_default: bool
    created_at: datetime


class TransactionIn(RequestModel):
    """A buy/sell without `price` is a market order at the current consolidated price; with
    `price` (and optionally `executed_at`) it records a trade as it happened. For deposit and
    withdraw, `quantity` is the amount of base currency."""

    kind: Literal["buy", "sell", "deposit", "withdraw"]
    symbol: str | None = Field(default=None, pattern=SYMBOL_PATTERN, description="e.g. BTC/USDT")
    quantity: Amount
    price: Amount | None = None
    executed_at: datetime | None = Field(default=None, description="ISO 8601 with a time zone; default now")
    fee: Fee | None = Field(default=None, description="In base currency; default SAGE_PORTFOLIO_FEE_RATE x notional")
    note: str | None = Field(default=None, max_length=500)


class TransactionPatch(RequestModel):
    quantity: Amount | None = None
    price: Amount | None = None
    executed_at: datetime | None = None
    fee: Fee | None = None
    note: str | None = Field(default=None, max_length=500)


class TransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    portfolio_id: uuid.UUID
    kind: str
    symbol: str | None
    quantity: Decimal
    price: Decimal | None
    fee: Decimal
    executed_at: datetime
    note: str | None
    created_at: datetime | None = None


class PositionValueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    cost: Decimal
    price: Decimal | None
    value: Decimal | None
    pnl: Decimal | None = Field(description="Unrealized P&L")
    pnl_pct: Decimal | None
    weight_pct: Decimal | None
    price_as_of: datetime | None
    stale: bool
    diverged: bool


class PortfolioSummaryOut(BaseModel):
    portfolio_id: uuid.UUID | None
    name: str | None
    base_currency: str
    cash: Decimal
    positions: list[PositionValueOut]
    holdings_value: Decimal = Field(description="Priced holdings at consolidated prices")
    holdings_cost: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal = Field(description="Sum over sells of (price - average cost) x quantity - fee")
    fees_paid: Decimal
    net_deposits: Decimal
    total_value: Decimal = Field(description="Cash plus the priced holdings")
    total_return: Decimal = Field(description="total_value - net_deposits")
    total_return_pct: Decimal | None
    priced_all: bool = Field(description="False when a holding has no fresh price and is left out of the totals")
    as_of: datetime

    @classmethod
    def of(cls, s: PortfolioSummary) -> PortfolioSummaryOut:
        return cls(
            portfolio_id=s.portfolio_id,
            name=s.name,
            base_currency=s.base_currency,
            cash=s.cash,
            positions=[PositionValueOut.model_validate(p) for p in s.positions],
            holdings_value=s.total_value,
            holdings_cost=s.total_cost,
            unrealized_pnl=s.total_pnl,
            realized_pnl=s.realized_pnl,
            fees_paid=s.fees_paid,
            net_deposits=s.net_deposits,
            total_value=s.equity,
            total_return=s.total_return,
            total_return_pct=s.total_return_pct,
            priced_all=s.priced_all,
            as_of=s.as_of,
        )


class ImportOut(BaseModel):
    booked: int
    skipped: int = Field(description="Rows booked by an earlier import of the same content")


class PointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    value: Decimal | None = Field(description="null: a held symbol has no candle for this point (see missing)")
    net_deposits: Decimal
    benchmark_value: Decimal | None = Field(description="The first valued point's value held in the benchmark")


class GapOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    symbol: str
    start: datetime
    end: datetime


class PerformanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    range: str
    resolution: str
    start: datetime
    end: datetime
    points: list[PointOut]
    time_weighted_return_pct: Decimal | None = Field(description="Deposits and withdrawals excluded")
    max_drawdown_pct: Decimal | None
    benchmark_symbol: str
    benchmark_return_pct: Decimal | None
    complete: bool = Field(description="False when candles are missing for some points; see missing")
    missing: list[GapOut]
