"""Deprecated: the positions API, an alias of the user's default portfolio for one release
(use /portfolios/...). Positions are derived from the ledger; PUT "sets the holding" by
booking the difference as a trade at the given average cost, DELETE sells the holding at its
own average cost (see sage.portfolio.legacy and docs/portfolio.md).

Symbols in paths accept the usual spellings (BTC/USDT, BTC-USDT, btc_usdt, BTCUSDT, BTC);
amounts are decimal strings in responses so no precision is lost to floating point.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sage.api.deps import CurrentUser, PortfolioDep
from sage.api.schemas import SYMBOL_PATTERN, NonNegativeDecimal, PositiveDecimal, RequestModel
from sage.errors import NotFound, SageError
from sage.market.symbols import parse_symbol
from sage.portfolio import legacy
from sage.portfolio.ledger import Holding, to_places
from sage.portfolio.service import PortfolioSummary

router = APIRouter(prefix="/portfolio", tags=["portfolio (deprecated)"], deprecated=True)

SymbolPath = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="e.g. BTC-USDT, BTCUSDT or BTC")]


class InvalidSymbol(SageError):
    status = 422
    code = "validation_error"


class PositionIn(RequestModel):
    quantity: PositiveDecimal
    average_cost: NonNegativeDecimal = Field(description="Average buy price in the quote currency")


class PositionOut(BaseModel):
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    created_at: datetime = Field(description="Time of the first trade of the holding")
    updated_at: datetime = Field(description="Time of the holding's last trade")

    @classmethod
    def of(cls, h: Holding) -> PositionOut:
        return cls(
            symbol=h.symbol,
            quantity=h.quantity,
            average_cost=to_places(h.average_cost),
            created_at=h.first_at,
            updated_at=h.last_at,
        )


class PositionValueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    cost: Decimal
    price: Decimal | None
    value: Decimal | None
    pnl: Decimal | None
    pnl_pct: Decimal | None
    weight_pct: Decimal | None
    price_as_of: datetime | None
    stale: bool


class SummaryOut(BaseModel):
    positions: list[PositionValueOut]
    total_value: Decimal
    total_cost: Decimal
    total_pnl: Decimal
    total_pnl_pct: Decimal | None
    priced_all: bool = Field(
        description="False when some positions had no current price and are left out of the totals"
    )
    as_of: datetime


def _symbol(raw: str) -> str:
    try:
        return parse_symbol(raw)
    except ValueError as exc:
        raise InvalidSymbol(str(exc), details=[{"field": "symbol", "in": "path", "message": str(exc)}]) from exc


def _summary(summary: PortfolioSummary) -> SummaryOut:
    return SummaryOut(
        positions=[PositionValueOut.model_validate(p) for p in summary.positions],
        total_value=summary.total_value,
        total_cost=summary.total_cost,
        total_pnl=summary.total_pnl,
        total_pnl_pct=summary.total_pnl_pct,
        priced_all=summary.priced_all,
        as_of=summary.as_of,
    )


@router.get("/positions", response_model=list[PositionOut])
async def list_positions(user: CurrentUser, portfolio: PortfolioDep) -> Any:
    return [PositionOut.of(h) for h in await legacy.holdings(portfolio, user.id)]


@router.get("/positions/{symbol:path}", response_model=PositionOut)
async def get_position(symbol: SymbolPath, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    wanted = _symbol(symbol)
    for position in await legacy.holdings(portfolio, user.id):
        if position.symbol == wanted:
            return PositionOut.of(position)
    raise NotFound(f"No position in {wanted}")


@router.put("/positions/{symbol:path}", response_model=PositionOut)
async def put_position(symbol: SymbolPath, body: PositionIn, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    """Set the holding in `symbol`: the difference to what is held is booked as a trade at
    `average_cost` (no fee; a deposit covers any cash shortfall)."""
    held = await legacy.set_holding(portfolio, user.id, _symbol(symbol), body.quantity, body.average_cost)
    return PositionOut.of(held)


@router.delete("/positions/{symbol:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_position(symbol: SymbolPath, user: CurrentUser, portfolio: PortfolioDep) -> Response:
    await legacy.remove_holding(portfolio, user.id, _symbol(symbol))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/positions", status_code=status.HTTP_204_NO_CONTENT)
async def clear_positions(user: CurrentUser, portfolio: PortfolioDep) -> Response:
    await legacy.clear(portfolio, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/summary", response_model=SummaryOut | None)
async def summary(user: CurrentUser, portfolio: PortfolioDep) -> Any:
    """Value and P&L of the holdings at consolidated prices; null when nothing is held."""
    result = await portfolio.summary(user.id)
    return None if result is None or not result.positions else _summary(result)
