"""The shadow portfolio: paper positions per user and their value at consolidated prices.

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
from sage.errors import NotFound, SageError
from sage.market.symbols import parse_symbol
from sage.portfolio.service import PortfolioSummary

router = APIRouter(prefix="/portfolio", tags=["portfolio"])

SymbolPath = Annotated[str, Path(min_length=1, max_length=32, description="e.g. BTC-USDT, BTCUSDT or BTC")]


class InvalidSymbol(SageError):
    status = 422
    code = "validation_error"


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Decimal = Field(gt=0, max_digits=38, decimal_places=18)
    average_cost: Decimal = Field(
        ge=0, max_digits=38, decimal_places=18, description="Average buy price in the quote currency"
    )


class PositionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    symbol: str
    quantity: Decimal
    average_cost: Decimal
    created_at: datetime
    updated_at: datetime


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
    return await portfolio.positions(user.id)


@router.get("/positions/{symbol:path}", response_model=PositionOut)
async def get_position(symbol: SymbolPath, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    wanted = _symbol(symbol)
    for position in await portfolio.positions(user.id):
        if position.symbol == wanted:
            return position
    raise NotFound(f"No position in {wanted}")


@router.put("/positions/{symbol:path}", response_model=PositionOut)
async def put_position(symbol: SymbolPath, body: PositionIn, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    """Create or replace the position in `symbol`."""
    return await portfolio.upsert(
        user.id, symbol=_symbol(symbol), quantity=body.quantity, average_cost=body.average_cost
    )


@router.delete("/positions/{symbol:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_position(symbol: SymbolPath, user: CurrentUser, portfolio: PortfolioDep) -> Response:
    await portfolio.delete(user.id, _symbol(symbol))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/positions", status_code=status.HTTP_204_NO_CONTENT)
async def clear_positions(user: CurrentUser, portfolio: PortfolioDep) -> Response:
    await portfolio.clear(user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/summary", response_model=SummaryOut | None)
async def summary(user: CurrentUser, portfolio: PortfolioDep) -> Any:
    """Value and P&L at consolidated prices; null when the portfolio is empty."""
    result = await portfolio.summary(user.id)
    return None if result is None else _summary(result)
