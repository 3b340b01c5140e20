"""A portfolio valued at consolidated prices (pure).

Positions whose price is missing or stale are listed (flagged) but left out of every total,
and `priced_all` says so, so nobody (the chat least of all) presents a partial total as whole.

`total_value`, `total_cost`, `total_pnl` and `total_pnl_pct` are about the holdings (the
figures the chat context has always read); `equity` is cash plus the priced holdings, what
the API calls the portfolio's total value, and `total_return` is equity minus net deposits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sage.market.reader import PriceQuote
from sage.portfolio.ledger import ZERO, Ledger, to_places

_HUNDRED = Decimal(100)


class HoldingLike(Protocol):
    @property
    def symbol(self) -> str: ...

    @property
    def quantity(self) -> Decimal: ...

    @property
    def average_cost(self) -> Decimal: ...


@dataclass(frozen=True)
class PositionValue:
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    cost: Decimal
    price: Decimal | None
    value: Decimal | None
    pnl: Decimal | None  # unrealized
    pnl_pct: Decimal | None
    weight_pct: Decimal | None  # share of the priced holdings' value
    price_as_of: datetime | None
    stale: bool
    diverged: bool = False


@dataclass(frozen=True)
class PortfolioSummary:
    positions: tuple[PositionValue, ...]
    total_value: Decimal  # priced holdings at market
    total_cost: Decimal  # cost basis of the priced holdings
    total_pnl: Decimal  # unrealized P&L of the priced holdings
    total_pnl_pct: Decimal | None
    priced_all: bool
    as_of: datetime
    cash: Decimal = ZERO
    equity: Decimal = ZERO  # cash + total_value
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    net_deposits: Decimal = ZERO
    total_return: Decimal = ZERO  # equity - net deposits
    total_return_pct: Decimal | None = None
    portfolio_id: uuid.UUID | None = None
    name: str | None = None
    base_currency: str = "USDT"


@dataclass(frozen=True)
class _Shown:
    symbol: str
    quantity: Decimal
    average_cost: Decimal


def pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else part / whole * _HUNDRED


def summarize(
    positions: Sequence[HoldingLike],
    quotes: Mapping[str, PriceQuote],
    now: datetime,
    *,
    ledger: Ledger | None = None,
    portfolio_id: uuid.UUID | None = None,
    name: str | None = None,
    base_currency: str = "USDT",
) -> PortfolioSummary:
    """Value and P&L of `positions` at `quotes`; with `ledger`, also cash, realized P&L,
    fees and the return on net deposits."""
    rows: list[PositionValue] = []
    total_value = ZERO
    total_cost = ZERO
    for held in positions:
        # 18 places, as stored: an average of 1/3 would otherwise print 80 digits
        position = _Shown(held.symbol, held.quantity, to_places(held.average_cost))
        cost = position.quantity * position.average_cost
        quote = quotes.get(position.symbol)
        if quote is None:
            rows.append(
                PositionValue(
                    position.symbol, position.quantity, position.average_cost, cost, *(None,) * 6, stale=False
                )
            )
            continue
        value = position.quantity * quote.price
        if not quote.stale:
            total_value += value
            total_cost += cost
        rows.append(
            PositionValue(
                symbol=position.symbol,
                quantity=position.quantity,
                average_cost=position.average_cost,
                cost=cost,
                price=quote.price,
                value=value,
                pnl=value - cost,
                pnl_pct=pct(value - cost, cost),
                weight_pct=None,
                price_as_of=quote.as_of,
                stale=quote.stale,
                diverged=quote.diverged,
            )
        )
    weighted = tuple(
        replace(row, weight_pct=pct(row.value, total_value)) if row.value is not None and not row.stale else row
        for row in rows
    )
    total_pnl = total_value - total_cost
    cash = ledger.cash if ledger is not None else ZERO
    net_deposits = ledger.net_deposits if ledger is not None else ZERO
    equity = cash + total_value
    return PortfolioSummary(
        positions=weighted,
        total_value=total_value,
        total_cost=total_cost,
        total_pnl=total_pnl,
        total_pnl_pct=pct(total_pnl, total_cost),
        priced_all=all(row.price is not None and not row.stale for row in rows),
        as_of=now,
        cash=cash,
        equity=equity,
        realized_pnl=ledger.realized_pnl if ledger is not None else ZERO,
        fees_paid=ledger.fees_paid if ledger is not None else ZERO,
        net_deposits=net_deposits,
        total_return=equity - net_deposits,
        total_return_pct=pct(equity - net_deposits, net_deposits),
        portfolio_id=portfolio_id,
        name=name,
        base_currency=base_currency,
    )
