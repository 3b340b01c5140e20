"""Shadow portfolios: paper-trading ledgers per user (docs/portfolio.md).

Another user's portfolio is a 404, as if it did not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import Response

from sage.api.deps import CurrentUser, PortfolioDep
from sage.api.openapi import error_responses
from sage.api.portfolio_schemas import (
    ImportOut,
    PerformanceOut,
    PortfolioIn,
    PortfolioOut,
    PortfolioPatch,
    PortfolioSummaryOut,
    TransactionIn,
    TransactionOut,
    TransactionPatch,
)
from sage.errors import SageError
from sage.market.symbols import SymbolError, parse_symbol
from sage.portfolio.service import TradeRequest

router = APIRouter(prefix="/portfolios", tags=["portfolios"])

MAX_IMPORT_BYTES = 5 * 1024 * 1024
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="A retried request with the same key returns the original transaction instead of booking again",
    ),
]


class BadImport(SageError):
    status = 422
    code = "validation_error"


class TooLarge(SageError):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(SageError):
    status = 415
    code = "unsupported_media_type"


@router.get("", response_model=list[PortfolioOut])
async def list_portfolios(user: CurrentUser, portfolio: PortfolioDep) -> Any:
    """The user's portfolios, oldest first; a default one is created on first use."""
    return await portfolio.portfolios(user.id)


@router.post("", response_model=PortfolioOut, status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_portfolio(body: PortfolioIn, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    return await portfolio.create(
        user.id,
        name=body.name,
        base_currency=body.base_currency,
        starting_cash=body.starting_cash,
        make_default=body.is_default,
    )


@router.get("/{portfolio_id}", response_model=PortfolioOut)
async def get_portfolio(portfolio_id: uuid.UUID, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    return await portfolio.get(user.id, portfolio_id)


@router.patch("/{portfolio_id}", response_model=PortfolioOut, responses=error_responses(409))
async def patch_portfolio(
    portfolio_id: uuid.UUID, body: PortfolioPatch, user: CurrentUser, portfolio: PortfolioDep
) -> Any:
    return await portfolio.update(user.id, portfolio_id, name=body.name, make_default=bool(body.is_default))


@router.delete("/{portfolio_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_portfolio(portfolio_id: uuid.UUID, user: CurrentUser, portfolio: PortfolioDep) -> Response:
    await portfolio.delete(user.id, portfolio_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{portfolio_id}/transactions", response_model=list[TransactionOut])
async def list_transactions(
    portfolio_id: uuid.UUID,
    user: CurrentUser,
    portfolio: PortfolioDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    symbol: Annotated[str | None, Query(max_length=41)] = None,
) -> Any:
    """Newest first."""
    await portfolio.get(user.id, portfolio_id)
    wanted = _symbol(symbol) if symbol is not None else None
    return await portfolio.transactions(user.id, portfolio_id, limit=limit, offset=offset, symbol=wanted)


@router.post(
    "/{portfolio_id}/transactions",
    response_model=TransactionOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A retry with a known Idempotency-Key: the original transaction"}},
)
async def book_transaction(
    portfolio_id: uuid.UUID,
    body: TransactionIn,
    user: CurrentUser,
    portfolio: PortfolioDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    booked = await portfolio.book(
        user.id,
        portfolio_id,
        TradeRequest(
            kind=body.kind,
            quantity=body.quantity,
            symbol=body.symbol,
            price=body.price,
            executed_at=body.executed_at,
            fee=body.fee,
            note=body.note,
        ),
        idempotency_key=idempotency_key,
    )
    if booked.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return booked.transaction


@router.patch("/{portfolio_id}/transactions/{tx_id}", response_model=TransactionOut)
async def correct_transaction(
    portfolio_id: uuid.UUID, tx_id: uuid.UUID, body: TransactionPatch, user: CurrentUser, portfolio: PortfolioDep
) -> Any:
    """Correct quantity, price, fee, time or note; refused when later history would not hold."""
    return await portfolio.correct_transaction(user.id, portfolio_id, tx_id, body.model_dump(exclude_unset=True))


@router.delete("/{portfolio_id}/transactions/{tx_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_transaction(
    portfolio_id: uuid.UUID, tx_id: uuid.UUID, user: CurrentUser, portfolio: PortfolioDep
) -> Response:
    """Refused (422) when later history would not hold without it (e.g. a sell of what it bought)."""
    await portfolio.delete_transaction(user.id, portfolio_id, tx_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{portfolio_id}/summary", response_model=PortfolioSummaryOut)
async def summary(portfolio_id: uuid.UUID, user: CurrentUser, portfolio: PortfolioDep) -> Any:
    result = await portfolio.summary(user.id, portfolio_id)
    assert result is not None  # a named portfolio is found or 404
    return PortfolioSummaryOut.of(result)


@router.get("/{portfolio_id}/performance", response_model=PerformanceOut)
async def performance(
    portfolio_id: uuid.UUID,
    user: CurrentUser,
    portfolio: PortfolioDep,
    range_: Annotated[Literal["1d", "1w", "1m", "3m", "1y", "all"], Query(alias="range")] = "1m",
) -> Any:
    """Value series from the ledger and stored candles (1h points up to 30 days, 1d beyond),
    time-weighted return, max drawdown, and holding BTC/USDT over the same points."""
    result = await portfolio.performance(user.id, portfolio_id, range_)
    assert result is not None  # a named portfolio is found or 404
    return PerformanceOut.model_validate(result)


@router.post(
    "/{portfolio_id}/import",
    response_model=ImportOut,
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_transactions(
    portfolio_id: uuid.UUID, request: Request, user: CurrentUser, portfolio: PortfolioDep
) -> Any:
    """A Binance trade-history export (Date(UTC),Pair,Side,Price,Executed,Amount,Fee) or our export.
    All rows or none: a bad row rejects the file (422 naming the row and the reason)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("text/csv", "text/plain", "application/csv"):
        raise UnsupportedMedia("Send the file as text/csv")
    await portfolio.get(user.id, portfolio_id)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_IMPORT_BYTES:
            raise TooLarge(f"An import is at most {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadImport("The file is not UTF-8 text") from exc
    result = await portfolio.import_csv(user.id, portfolio_id, text)
    return ImportOut(booked=result.booked, skipped=result.skipped)


@router.get("/{portfolio_id}/export", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def export_transactions(portfolio_id: uuid.UUID, user: CurrentUser, portfolio: PortfolioDep) -> Response:
    text = await portfolio.export_csv(user.id, portfolio_id)
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="portfolio-{portfolio_id}.csv"'},
    )


def _symbol(raw: str) -> str:
    try:
        return parse_symbol(raw)
    except SymbolError as exc:
        raise BadImport(str(exc), details=[{"field": "symbol", "in": "query", "message": str(exc)}]) from exc
